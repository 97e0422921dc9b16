// The voices of VoiceList that speak Russian (ru_RU) or US English (en_US), by provider, as
// Voximplant's typings declare them (voximplant/voxengine-ci, typings/voxengine.d.ts, commit
// 8b595242, November 2025): `VoiceList.Default.ru_RU_Female` and so on. The stand-in offers
// exactly these; a voice of another language, or a name the typings do not declare, is drift.
'use strict';

const VOICES = {
  'Default': [
    'ru_RU_Female ru_RU_Male en_US_Female en_US_Male',
  ].join(' '),
  'Amazon': [
    'en_US_Joanna ru_RU_Tatyana ru_RU_Maxim en_US_Salli en_US_Matthew en_US_Kimberly',
    'en_US_Kendra en_US_Justin en_US_Joey en_US_Ivy',
  ].join(' '),
  'Amazon.Neural': [
    'en_US_Danielle en_US_Gregory en_US_Joanna en_US_Ruth en_US_Kevin en_US_Salli',
    'en_US_Matthew en_US_Kimberly en_US_Kendra en_US_Justin en_US_Joey en_US_Ivy',
    'en_US_Stephen',
  ].join(' '),
  'Google': [
    'en_US_Casual_K en_US_Chirp_HD_D en_US_Chirp_HD_F en_US_Chirp_HD_O',
    'en_US_Chirp3_HD_Achernar en_US_Chirp3_HD_Achird en_US_Chirp3_HD_Algenib',
    'en_US_Chirp3_HD_Algieba en_US_Chirp3_HD_Alnilam en_US_Chirp3_HD_Aoede',
    'en_US_Chirp3_HD_Autonoe en_US_Chirp3_HD_Callirrhoe en_US_Chirp3_HD_Charon',
    'en_US_Chirp3_HD_Despina en_US_Chirp3_HD_Enceladus en_US_Chirp3_HD_Erinome',
    'en_US_Chirp3_HD_Fenrir en_US_Chirp3_HD_Gacrux en_US_Chirp3_HD_Iapetus',
    'en_US_Chirp3_HD_Kore en_US_Chirp3_HD_Laomedeia en_US_Chirp3_HD_Leda',
    'en_US_Chirp3_HD_Orus en_US_Chirp3_HD_Puck en_US_Chirp3_HD_Pulcherrima',
    'en_US_Chirp3_HD_Rasalgethi en_US_Chirp3_HD_Sadachbia en_US_Chirp3_HD_Sadaltager',
    'en_US_Chirp3_HD_Schedar en_US_Chirp3_HD_Sulafat en_US_Chirp3_HD_Umbriel',
    'en_US_Chirp3_HD_Vindemiatrix en_US_Chirp3_HD_Zephyr en_US_Chirp3_HD_Zubenelgenubi',
    'en_US_Neural2_A en_US_Neural2_C en_US_Neural2_D en_US_Neural2_E en_US_Neural2_F',
    'en_US_Neural2_G en_US_Neural2_H en_US_Neural2_I en_US_Neural2_J en_US_News_K',
    'en_US_News_L en_US_News_N en_US_Polyglot_1 en_US_Standard_A en_US_Standard_B',
    'en_US_Standard_C en_US_Standard_D en_US_Standard_E en_US_Standard_F en_US_Standard_G',
    'en_US_Standard_H en_US_Standard_I en_US_Standard_J en_US_Studio_O en_US_Studio_Q',
    'en_US_Wavenet_A en_US_Wavenet_B en_US_Wavenet_C en_US_Wavenet_D en_US_Wavenet_E',
    'en_US_Wavenet_F en_US_Wavenet_G en_US_Wavenet_H en_US_Wavenet_I en_US_Wavenet_J',
    'ru_RU_Chirp3_HD_Aoede ru_RU_Chirp3_HD_Charon ru_RU_Chirp3_HD_Fenrir',
    'ru_RU_Chirp3_HD_Kore ru_RU_Chirp3_HD_Leda ru_RU_Chirp3_HD_Orus ru_RU_Chirp3_HD_Puck',
    'ru_RU_Chirp3_HD_Zephyr ru_RU_Standard_A ru_RU_Standard_B ru_RU_Standard_C',
    'ru_RU_Standard_D ru_RU_Standard_E ru_RU_Wavenet_A ru_RU_Wavenet_B ru_RU_Wavenet_C',
    'ru_RU_Wavenet_D ru_RU_Wavenet_E',
  ].join(' '),
  'IBM.Neural': [
    'en_US_Allison en_US_Emily en_US_Henry en_US_Kevin en_US_Lisa en_US_Michael',
    'en_US_Olivia en_US_Allison_Expressive en_US_Emma_Expressive en_US_Lisa_Expressive',
    'en_US_Michael_Expressive',
  ].join(' '),
  'Microsoft.Neural': [
    'en_US_AvaMultilingualNeural en_US_AndrewMultilingualNeural',
    'en_US_EmmaMultilingualNeural en_US_AlloyTurboMultilingualNeural',
    'en_US_EchoTurboMultilingualNeural en_US_FableTurboMultilingualNeural',
    'en_US_OnyxTurboMultilingualNeural en_US_NovaTurboMultilingualNeural',
    'en_US_ShimmerTurboMultilingualNeural en_US_BrianMultilingualNeural en_US_AvaNeural',
    'en_US_AndrewNeural en_US_EmmaNeural en_US_BrianNeural en_US_JennyNeural',
    'en_US_GuyNeural en_US_AriaNeural en_US_DavisNeural en_US_JaneNeural en_US_JasonNeural',
    'en_US_KaiNeural en_US_LunaNeural en_US_SaraNeural en_US_TonyNeural en_US_NancyNeural',
    'en_US_CoraMultilingualNeural en_US_ChristopherMultilingualNeural',
    'en_US_BrandonMultilingualNeural en_US_AmberNeural en_US_AnaNeural en_US_AshleyNeural',
    'en_US_BrandonNeural en_US_ChristopherNeural en_US_CoraNeural en_US_ElizabethNeural',
    'en_US_EricNeural en_US_JacobNeural en_US_JennyMultilingualNeural en_US_MichelleNeural',
    'en_US_MonicaNeural en_US_RogerNeural en_US_RyanMultilingualNeural en_US_SteffanNeural',
    'ru_RU_SvetlanaNeural ru_RU_DmitryNeural ru_RU_DariyaNeural',
  ].join(' '),
  'SaluteSpeech': [
    'ru_RU_natalia ru_RU_boris ru_RU_marfa ru_RU_taras ru_RU_alexandra ru_RU_sergey',
  ].join(' '),
  'TBank': [
    'ru_RU_Anna ru_RU_Dima',
  ].join(' '),
  'Yandex.Neural': [
    'en_US_john ru_RU_alena ru_RU_filipp ru_RU_ermil ru_RU_jane ru_RU_omazh ru_RU_zahar',
    'ru_RU_marina ru_RU_madi_ru',
  ].join(' '),
  'YandexV3': [
    'en_US_john ru_RU_alena ru_RU_filipp ru_RU_ermil ru_RU_jane ru_RU_omazh ru_RU_zahar',
    'ru_RU_dasha ru_RU_julia ru_RU_lera ru_RU_masha ru_RU_marina ru_RU_alexander',
    'ru_RU_kirill ru_RU_anton ru_RU_madi_ru ru_RU_saule_ru ru_RU_lola_ru ru_RU_zhanar_ru',
    'ru_RU_yulduz_ru',
  ].join(' '),
};

/** {'Default': ['ru_RU_Female', …], …}: the voice names per VoiceList namespace path. */
function voiceNames() {
  const out = {};
  for (const [ns, names] of Object.entries(VOICES)) out[ns] = names.split(' ');
  return out;
}

module.exports = { voiceNames };
