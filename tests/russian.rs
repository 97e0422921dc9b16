//! A Russian caller end to end on the real engines: the test set's multilingual Whisper
//! (`ggml-base.bin`, `stt.language = "ru"`) hears real recorded telephone speech (the
//! Asterisk Russian prompts, scripts/fetch-test-speech) over the media stream in μ-law
//! 8 kHz and through the recording flow; the transcript is Russian and close to the
//! reference, the reply is written in Cyrillic and spoken back. A Russian question is
//! answered from a Russian knowledge base's passage, and a Russian request for a person ends
//! in the transfer tool. The questions that are not in the prompt set are spoken by
//! espeak-ng's Russian voice (Debian), a second real synthesizer. A bilingual line answers
//! a Russian and an English caller each in the voice of their language.
//!
//! No Russian-capable instruction-tuned LLM nor Russian Piper voice is obtainable for the
//! test set (README, "Russian deployments"), so these tests check the Russian *path* —
//! transcript, prompts, phrases, tool grammar, audio back — not the quality of the reply.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{recording_turn, repo};
use serde_json::Value;
use voxd::audio::{decode, Pcm};
use voxd::bench::caller::{decode_media, is_type, Caller};
use voxd::bench::recordings::{read_set, Recording};
use voxd::bench::wer::wer;
use voxd::config::{CallLanguage, Config, LanguageConfig};
use voxd::engines::Engines;
use voxd::transport::voximplant_ws::protocol::Encoding;

const GREETING: &str = "Здравствуйте! Чем могу помочь?";
const OPERATOR: &str = "+74950000000";

/// The Russian line: the test set's multilingual Whisper fixed to Russian, Russian prompt
/// and phrases.
fn russian_config() -> Config {
    let mut cfg = common::test_config();
    cfg.models.stt = repo().join("models/test/ggml-base.bin");
    cfg.stt.language = "ru".into();
    cfg.llm.system_prompt =
        "Ты телефонный помощник пекарни «Солнышко». Отвечай по-русски, одним коротким \
         предложением."
            .into();
    cfg.conversation.greeting = GREETING.into();
    cfg.calls.reprompt_text = "Извините, я не расслышал. Повторите, пожалуйста.".into();
    cfg.calls.hangup_phrases = vec!["до свидания".into()];
    cfg.download.allow_private = true;
    // A history of each API's own: the tests start theirs side by side.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    cfg.history.database = std::env::temp_dir().join(format!(
        "voxd-russian-history-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    cfg
}

/// The engines on the Russian configuration, loaded once for every test of this binary.
fn engines() -> Arc<Engines> {
    static E: OnceLock<Arc<Engines>> = OnceLock::new();
    E.get_or_init(|| Arc::new(Engines::load(&russian_config()).expect("engines load")))
        .clone()
}

/// An Asterisk prompt set: `asterisk-ru` or `asterisk-en`.
fn speech_dir(set: &str) -> PathBuf {
    let dir = repo().join("models/speech").join(set);
    assert!(
        dir.join("transcripts.txt").is_file(),
        "test speech missing: run scripts/fetch-test-speech (scripts/test does)"
    );
    dir
}

/// One recording of the Russian prompt set: what is said, and its WAV file's bytes.
fn recording(name: &str) -> (Recording, Vec<u8>) {
    recording_of("asterisk-ru", name)
}

/// One recording of an Asterisk prompt set.
fn recording_of(set: &str, name: &str) -> (Recording, Vec<u8>) {
    let dir = speech_dir(set);
    let transcripts = std::fs::read_to_string(dir.join("transcripts.txt")).unwrap();
    let r = read_set(&dir, &transcripts)
        .recordings
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} is not in {set}"));
    let bytes = std::fs::read(&r.path).unwrap();
    (r, bytes)
}

/// espeak-ng's Russian voice says `text`: WAV bytes.
fn espeak_ru(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("ru.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "ru+m3", "-s", "130", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng missing (scripts/install-deps)");
    assert!(status.success());
    std::fs::read(wav).unwrap()
}

fn has_cyrillic(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, 'а'..='я' | 'А'..='Я' | 'ё' | 'Ё'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_caller_on_the_media_stream_in_ulaw_is_heard_and_answered() {
    let api = common::spawn_api(russian_config(), engines()).await;
    let (said, wav) = recording("check-number-dial-again");
    let question = decode::decode(&wav, 30.0).unwrap();
    assert_eq!(
        question.rate, 8000,
        "the Asterisk prompts are 8 kHz telephone audio"
    );

    let mut c = Caller::connect(api, "", Some(common::TOKEN)).await.unwrap();
    c.start(Encoding::Ulaw, "ru-stream").await.unwrap();
    let wait = Duration::from_secs(90);
    let assistant = |v: &Value| is_type(v, "transcript") && v["role"] == "assistant";
    let greeted = c.wait_for(0, "greeting", wait, assistant).await.unwrap();
    assert_eq!(c.messages()[greeted].json["text"], GREETING);

    let from = c.messages().len();
    c.stream(&question).await.unwrap();
    c.silence(1500).await.unwrap();
    let user = c
        .wait_for(from, "user transcript", wait, |v| {
            is_type(v, "transcript") && v["role"] == "user"
        })
        .await
        .unwrap();
    let heard = c.messages()[user].json["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        has_cyrillic(&heard) && wer(&said.words, &heard) <= 0.35,
        "said {:?}, voxd heard {heard:?}",
        said.words
    );
    let done = c.wait_for(user, "reply", wait, assistant).await.unwrap();
    let msgs = c.messages();
    let reply = msgs[done].json["text"].as_str().unwrap();
    assert!(has_cyrillic(reply), "reply {reply:?}");
    let audio = decode_media(&msgs[user..done]).unwrap();
    assert!(audio.duration_secs() > 0.3, "{} s", audio.duration_secs());
    assert_eq!(audio.rate, 8000, "answered in the caller's μ-law 8 kHz");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_recording_is_transcribed_and_answered_with_audio() {
    let api = common::spawn_api(russian_config(), engines()).await;
    let (said, wav) = recording("pls-try-call-later");
    let body = recording_turn(api, "ru-recording", wav).await;
    let heard = body["user_text"].as_str().unwrap();
    assert!(
        wer(&said.words, heard) <= 0.35,
        "said {:?}, voxd heard {heard:?}",
        said.words
    );
    assert_eq!(body["language"], "ru");
    let reply = body["reply_text"].as_str().unwrap();
    assert!(has_cyrillic(reply), "reply {reply:?}");
    assert_eq!(reply_rate(&body).await, 22_050);
}

/// A Russian FAQ, indexed by the real `voxd kb index`.
fn indexed_faq(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("faq.md"),
        "# Пекарня «Солнышко»\n\n\
         Семейная пекарня: хлеб, торты и пирожки каждое утро.\n\n\
         ## Адрес\n\n\
         Пекарня находится на улице Ленина, дом 12, рядом с вокзалом.\n\n\
         ## Доставка\n\n\
         Доставка по городу стоит 300 рублей и занимает один час.\n",
    )
    .unwrap();
    let index = dir.join("kb");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .current_dir(repo())
        .env_remove("VOXD_CONFIG")
        .env("VOXD_KB_INDEX", &index)
        .args(["kb", "index"])
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_question_is_answered_from_the_knowledge_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = russian_config();
    cfg.conversation.greeting = String::new();
    cfg.kb.enabled = true;
    cfg.kb.index = indexed_faq(dir.path());
    cfg.kb.instruction = "Используй только эти факты из документов компании. Если в них нет \
                          ответа, скажи: \"{handoff}\""
        .into();
    cfg.kb.handoff = "Я этого не знаю, соединить вас с коллегой?".into();
    let api = common::spawn_api(cfg, engines()).await;
    let body = recording_turn(api, "ru-kb", espeak_ru("Сколько стоит доставка по городу?")).await;
    let reply = body["reply_text"].as_str().unwrap();
    assert!(
        reply.contains("300") || reply.contains("рубл"),
        "heard {}, answered {reply:?}",
        body["user_text"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_request_for_a_person_ends_in_the_transfer_tool() {
    let mut cfg = russian_config();
    cfg.conversation.greeting = String::new();
    cfg.calls.hangup_phrases = Vec::new();
    cfg.tools.enabled = true;
    cfg.tools.operator_phone = OPERATOR.into();
    cfg.tools.examples = [
        ("У вас есть торты?", "Да, у нас есть торты."),
        (
            "Соедините меня с оператором.",
            r#"Соединяю вас с оператором. <tool_call>{"name": "transfer"}</tool_call>"#,
        ),
    ]
    .iter()
    .map(|(a, b)| [a.to_string(), b.to_string()])
    .collect();
    let api = common::spawn_api(cfg, engines()).await;
    let body = recording_turn(
        api,
        "ru-transfer",
        espeak_ru("Соедините меня, пожалуйста, с оператором."),
    )
    .await;
    assert_eq!(body["action"], "transfer", "{body}");
    assert_eq!(body["transfer_to"], OPERATOR);
    let said = body["reply_text"].as_str().unwrap();
    assert!(has_cyrillic(said) && !said.contains('<'), "{said:?}");
}

/// The test voice set to phonemize Russian (espeak-ng's "ru"; its `.onnx` linked): Piper's
/// joe with a Russian accent, standing in for a Russian voice. Its config states 16 kHz
/// instead of joe's 22 050 Hz, which marks the replies it spoke.
fn russian_joe(dir: &Path) -> PathBuf {
    let joe = repo().join("models/test/en_US-joe-medium.onnx");
    let voice = dir.join("ru_RU-joe-medium.onnx");
    std::os::unix::fs::symlink(&joe, &voice).unwrap();
    let mut json: Value =
        serde_json::from_slice(&std::fs::read(joe.with_extension("onnx.json")).unwrap()).unwrap();
    json["espeak"]["voice"] = "ru".into();
    json["audio"]["sample_rate"] = RUSSIAN_VOICE_RATE.into();
    std::fs::write(
        dir.join("ru_RU-joe-medium.onnx.json"),
        serde_json::to_vec(&json).unwrap(),
    )
    .unwrap();
    voice
}

const RUSSIAN_VOICE_RATE: u32 = 16_000;

/// The sample rate of a reply's audio, fetched from its URL (which must hold speech).
async fn reply_rate(body: &Value) -> u32 {
    let url = body["reply_audio_url"].as_str().unwrap();
    let audio = common::client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let pcm: Pcm = decode::decode(&audio, 120.0).unwrap();
    assert!(pcm.duration_secs() > 0.3, "{} s", pcm.duration_secs());
    pcm.rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bilingual_line_answers_each_caller_in_the_voice_of_their_language() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = russian_config();
    cfg.stt.language = "auto".into();
    cfg.conversation.language = CallLanguage::Auto;
    cfg.models.voice = russian_joe(dir.path());
    let joe = repo().join("models/test/en_US-joe-medium.onnx");
    let english = LanguageConfig {
        system_prompt: Some(
            "You are a phone assistant. Answer in one short English sentence.".into(),
        ),
        voice: Some(joe),
        ..LanguageConfig::default()
    };
    cfg.languages.insert("en".into(), english);
    cfg.languages.insert("ru".into(), LanguageConfig::default());
    // Its own engines: the base voice is the Russian one, English has its own.
    let engines = Arc::new(Engines::load(&cfg).expect("engines load"));
    assert_eq!(engines.names.voices["en"], "en_US-joe-medium.onnx");
    let api = common::spawn_api(cfg, engines).await;
    let (_, health) = common::get_json(api, "/health").await;
    assert_eq!(health["languages"]["tts"], "ru", "{health}");
    assert_eq!(health["languages"]["voices"]["en"], "en-us", "{health}");

    let (_, wav) = recording("pls-try-call-later");
    let body = recording_turn(api, "bilingual-ru", wav).await;
    assert_eq!(body["language"], "ru", "{body}");
    assert_eq!(reply_rate(&body).await, RUSSIAN_VOICE_RATE, "{body}");

    let (said, wav) = recording_of("asterisk-en", "check-number-dial-again");
    let body = recording_turn(api, "bilingual-en", wav).await;
    let heard = body["user_text"].as_str().unwrap();
    assert!(
        wer(&said.words, heard) <= 0.35,
        "said {:?}, heard {heard:?}",
        said.words
    );
    assert_eq!(body["language"], "en", "{body}");
    assert_eq!(reply_rate(&body).await, 22_050, "the English voice: {body}");
}

#[test]
fn smart_turn_hears_a_russian_sentence_finished_and_cut_short() {
    let engines = engines();
    let model = engines.turn.as_ref().expect("the end-of-turn model");
    // "Набранный номер не может | быть вызван.", "На данный момент | все линии заняты."
    for (name, cut) in [
        ("cannot-complete-as-dialed", 0.7),
        ("all-circuits-busy-now", 0.5),
    ] {
        let (whole, part) = common::finished_whole_and_cut(model, "asterisk-ru", name, cut);
        assert!(whole > 0.6, "{name}: the whole sentence {whole}");
        assert!(part < 0.3, "{name}: cut at {cut}: {part}");
    }
}
