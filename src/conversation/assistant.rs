//! The assistant every conversation talks to: the engines behind their traits (STT and TTS
//! jobs through the deadline gate of the cores), the knowledge base, the tools, the prompt head and
//! the reply settings, with a head and phrases per language a call may be answered in
//! ([`Languages`]), built once and shared by every call and mode. [`super::reply`] is what
//! it does with them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use anyhow::{anyhow, Result};

use super::language::Languages;
use super::prompt::{self, KbWords};
use super::tools::{self, Tools};
use crate::audio::{resample, Pcm, STT_RATE};
use crate::config::{CallLanguage, Config, Phrases};
use crate::engines::schedule::{Deadline, Due, EngineLoad, Gate, Work};
use crate::engines::{
    ChatMessage, Engines, Grammar, LlmEvent, Role, SpeechToText, TextGenerator, TextToSpeech,
    Transcript, TurnEndModel,
};
use crate::kb::KnowledgeBase;

/// A request to give up a transcription, seen by a job waiting for its place and by Whisper.
#[derive(Debug, Default)]
pub struct Stop {
    set: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Gives the transcription up.
    pub fn set(&self) {
        self.set.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Whether it was given up.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Returns once it is given up.
    async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a `set` in between is not missed.
        notified.as_mut().enable();
        if !self.is_set() {
            notified.await;
        }
    }
}

/// How replies are made (from `[llm]`, `[conversation]`, `[calls]` and `[tts]`).
#[derive(Debug, Clone)]
pub struct ReplySettings {
    /// Most sentences a reply speaks (0: no limit).
    pub max_sentences: usize,
    /// The first piece may be a clause of this many words (0: whole sentences only).
    pub first_clause_words: usize,
    /// Voice the whole reply at once instead of piece by piece (for comparison).
    pub sequential: bool,
    /// Caller's words that end the call after voxd's reply.
    pub hangup_phrases: Vec<String>,
    /// Said in the recording flow when nothing intelligible was heard.
    pub reprompt_text: String,
    /// Silence between the pieces of a reply joined into one recording.
    pub sentence_pause_ms: u32,
    /// What the model reads for keys the caller pressed (`{keys}`: them).
    pub keypad_text: String,
}

impl ReplySettings {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            max_sentences: cfg.llm.max_sentences as usize,
            first_clause_words: cfg.conversation.first_clause_words as usize,
            sequential: cfg.conversation.pipeline == crate::config::Pipeline::Sequential,
            hangup_phrases: cfg.calls.hangup_phrases.clone(),
            reprompt_text: cfg.calls.reprompt_text.clone(),
            sentence_pause_ms: cfg.tts.sentence_silence_ms,
            keypad_text: cfg.dtmf.text.clone(),
        }
    }
}

/// The engines, knowledge and settings a reply draws on.
pub struct Assistant {
    stt: Option<Arc<dyn SpeechToText>>,
    llm: Arc<dyn TextGenerator>,
    tts: Option<Arc<dyn TextToSpeech>>,
    /// The voices of the languages that have their own, by language code.
    voices: BTreeMap<String, Arc<dyn TextToSpeech>>,
    /// How many STT and TTS jobs run at once, and who goes next.
    speech: Arc<Gate>,
    pub(super) kb: Option<KnowledgeBase>,
    pub(super) tools: Option<Tools>,
    pub(super) grammar: Option<Grammar>,
    /// What every prompt starts with: the system message and the tools' examples.
    pub(super) head: Vec<ChatMessage>,
    /// The other languages a call may be answered in, each with its own head and phrases.
    pub(super) languages: Languages,
    pub settings: ReplySettings,
    /// Hears whether the caller has finished their turn (none: silence and words decide).
    turn_model: Option<Arc<dyn TurnEndModel>>,
}

/// What a reply says in one language: the prompt head, the caller's goodbyes, the reprompt
/// and the knowledge base's words.
pub(super) struct InLanguage<'a> {
    pub head: &'a [ChatMessage],
    pub hangup_phrases: &'a [String],
    pub reprompt_text: &'a str,
    pub keypad_text: &'a str,
    pub kb: Option<(&'a KnowledgeBase, KbWords<'a>)>,
}

impl Assistant {
    /// An assistant that only writes text (`voxd chat`, `voxd kb ask`): no STT, no voice.
    pub fn new(
        llm: Arc<dyn TextGenerator>,
        system_prompt: &str,
        tools: Option<Tools>,
        settings: ReplySettings,
    ) -> Self {
        let hermes = llm.template_mentions(tools::CALL_OPEN);
        let head = prompt::head(system_prompt, tools.as_ref(), hermes);
        let grammar = tools.as_ref().map(Tools::llm_grammar);
        Self {
            stt: None,
            llm,
            tts: None,
            voices: BTreeMap::new(),
            speech: Arc::new(Gate::new(1)),
            kb: None,
            tools,
            grammar,
            head,
            languages: Languages::default(),
            settings,
            turn_model: None,
        }
    }

    /// Adds the model that hears whether the caller has finished their turn.
    pub fn with_turn_model(mut self, model: Option<Arc<dyn TurnEndModel>>) -> Self {
        self.turn_model = model;
        self
    }

    /// The model that hears whether the caller has finished their turn, if there is one.
    pub fn turn_model(&self) -> Option<Arc<dyn TurnEndModel>> {
        self.turn_model.clone()
    }

    /// Answers a call in the language it is heard in (`setting`), with these languages'
    /// words ([`Config::language_phrases`]); their heads carry the same tools as the base.
    pub fn with_languages(
        mut self,
        setting: CallLanguage,
        phrases: BTreeMap<String, Phrases>,
    ) -> Self {
        let hermes = self.llm.template_mentions(tools::CALL_OPEN);
        self.languages = Languages::new(setting, phrases, self.tools.as_ref(), hermes);
        self
    }

    /// The language a turn is answered in: see [`Languages::of_turn`].
    pub(super) fn turn_language(
        &self,
        heard: &str,
        words: usize,
        call: Option<&str>,
    ) -> Option<String> {
        self.languages.of_turn(heard, words, call)
    }

    /// What a reply says in `language` (None, or one without words: the base keys).
    pub(super) fn in_language(&self, language: Option<&str>) -> InLanguage<'_> {
        match self.languages.get(language) {
            Some(l) => InLanguage {
                head: &l.head,
                hangup_phrases: &l.phrases.hangup_phrases,
                reprompt_text: &l.phrases.reprompt_text,
                keypad_text: &l.phrases.keypad_text,
                kb: self.kb.as_ref().map(|kb| {
                    let words = KbWords {
                        instruction: &l.phrases.kb_instruction,
                        handoff: &l.phrases.kb_handoff,
                    };
                    (kb, words)
                }),
            },
            None => InLanguage {
                head: &self.head,
                hangup_phrases: &self.settings.hangup_phrases,
                reprompt_text: &self.settings.reprompt_text,
                keypad_text: &self.settings.keypad_text,
                kb: self.kb.as_ref().map(|kb| (kb, KbWords::of(kb.config()))),
            },
        }
    }

    /// Said in the recording flow when nothing intelligible was heard, in a call's
    /// `language`.
    pub fn reprompt_text(&self, language: Option<&str>) -> &str {
        self.in_language(language).reprompt_text
    }

    /// What the model reads for the `keys` the caller pressed ("1 2 3"), in a call's
    /// `language`.
    pub fn keypad_text(&self, language: Option<&str>, keys: &str) -> String {
        self.in_language(language)
            .keypad_text
            .replace("{keys}", keys)
    }

    /// Adds ears and a voice (one job at a time; see [`Self::with_gate`]).
    pub fn with_speech(mut self, stt: Arc<dyn SpeechToText>, tts: Arc<dyn TextToSpeech>) -> Self {
        self.stt = Some(stt);
        self.tts = Some(tts);
        self
    }

    /// Speaks to a call heard in one of these languages in its voice instead of the base one.
    pub fn with_voices(mut self, voices: BTreeMap<String, Arc<dyn TextToSpeech>>) -> Self {
        self.voices = voices;
        self
    }

    /// Runs STT and TTS jobs through `speech` (the engines' gate, which the LLM defers to).
    pub fn with_gate(mut self, speech: Arc<Gate>) -> Self {
        self.speech = speech;
        self
    }

    /// What the engines are doing now: jobs waiting and running.
    pub fn engine_load(&self) -> EngineLoad {
        EngineLoad {
            stt: self.speech.lane(Work::Stt),
            llm: self.llm.lane(),
            tts: self.speech.lane(Work::Tts),
        }
    }

    /// Adds the knowledge base the replies draw on.
    pub fn with_kb(mut self, kb: Option<KnowledgeBase>) -> Self {
        self.kb = kb;
        self
    }

    /// The engines that have died (a panic in the LLM's thread): voxd cannot answer until it
    /// restarts.
    pub fn dead_engines(&self) -> Vec<&'static str> {
        if self.llm.is_alive() {
            Vec::new()
        } else {
            vec!["llm"]
        }
    }

    /// The knowledge base the replies draw on, if any.
    pub fn kb(&self) -> Option<&KnowledgeBase> {
        self.kb.as_ref()
    }

    /// The assistant of a call-serving voxd: the loaded engines, the configured tools
    /// (their grammar checked against the model here, once) and `kb`.
    pub fn from_engines(
        engines: &Engines,
        kb: Option<KnowledgeBase>,
        cfg: &Config,
    ) -> Result<Self> {
        let assistant = Self::new(
            engines.llm.clone(),
            &cfg.llm.system_prompt,
            Tools::from_config(&cfg.tools),
            ReplySettings::from_config(cfg),
        )
        .with_languages(cfg.conversation.language, cfg.language_phrases());
        if let Some(g) = &assistant.grammar {
            engines
                .llm
                .check_grammar(&g.gbnf)
                .map_err(|e| anyhow!("the tools' grammar does not load: {e}"))?;
        }
        Ok(assistant
            .with_speech(engines.stt.clone(), engines.tts.clone())
            .with_voices(
                engines
                    .voices
                    .iter()
                    .map(|(code, v)| (code.clone(), v.clone() as Arc<dyn TextToSpeech>))
                    .collect(),
            )
            .with_gate(engines.speech.clone())
            .with_turn_model(engines.turn.clone().map(|m| m as Arc<dyn TurnEndModel>))
            .with_kb(kb))
    }

    /// Has the LLM evaluate the prompt head once (before a caller's first words), so the
    /// first call after a start copies it from the cache instead of waiting for it; later
    /// calls copy it from any call's sequence.
    pub async fn warm_up(&self) -> Result<()> {
        let mut messages = self.head.clone();
        messages.push(ChatMessage::new(Role::User, "Hello."));
        let due = Due::new(Deadline::now());
        let mut stream = self.llm.reply(messages, self.grammar.as_ref(), due)?;
        // The head is cached once the first word is written; the rest is not needed.
        match stream.next().await {
            Some(LlmEvent::Text(_) | LlmEvent::Done { .. }) => Ok(()),
            Some(LlmEvent::Error(e)) => Err(anyhow!("the LLM failed: {e}")),
            None => Err(anyhow!("the LLM stopped")),
        }
    }

    /// The system message (with the tools' description when tools are on).
    pub fn system_message(&self) -> &ChatMessage {
        &self.head[0]
    }

    pub(super) fn llm(&self) -> &dyn TextGenerator {
        self.llm.as_ref()
    }

    /// Transcribes audio at any rate off the async runtime (resampled to 16 kHz), when the
    /// gate lets it by `deadline`.
    pub async fn transcribe(&self, audio: Pcm, deadline: Deadline) -> Result<Transcript> {
        self.transcribe_unless(audio, deadline, Arc::default())
            .await
    }

    /// [`Self::transcribe`], given up once `stop` is set: at once while it waits for its
    /// place, soon while Whisper runs.
    pub async fn transcribe_unless(
        &self,
        audio: Pcm,
        deadline: Deadline,
        stop: Arc<Stop>,
    ) -> Result<Transcript> {
        let stt = self
            .stt
            .clone()
            .ok_or_else(|| anyhow!("this assistant has no speech recognition"))?;
        let pass = tokio::select! {
            pass = self.speech.enter(Work::Stt, deadline) => pass,
            () = stop.wait() => return Err(anyhow!("transcription stopped")),
        };
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _pass = pass;
            span.in_scope(|| {
                let pcm = resample::to_rate(audio, STT_RATE)?;
                stt.transcribe(&pcm.samples, &stop.set)
            })
        })
        .await?
    }

    /// Voices `text` off the async runtime in the voice of `language` (its own, else the
    /// base voice), at `rate` (None: the voice's own), when the gate lets it by `deadline`.
    /// Without a voice the audio is empty.
    pub async fn speak(
        &self,
        text: &str,
        rate: Option<u32>,
        deadline: Deadline,
        language: Option<&str>,
    ) -> Result<Pcm> {
        let own = language.and_then(|l| self.voices.get(l));
        let Some(tts) = own.or(self.tts.as_ref()).cloned() else {
            return Ok(Pcm {
                samples: Vec::new(),
                rate: rate.unwrap_or(STT_RATE),
            });
        };
        let text = text.to_string();
        let pass = self.speech.enter(Work::Tts, deadline).await;
        tokio::task::spawn_blocking(move || {
            let _pass = pass;
            let pcm = tts.synthesize(&text)?;
            match rate {
                Some(r) => resample::to_rate(pcm, r),
                None => Ok(pcm),
            }
        })
        .await?
    }
}
