//! Fake engines and a harness that drives a [`Conversation`] with a test clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::audio::Pcm;
use crate::calls::{CallId, CallLog, CallRecorder, Calls};
use crate::config::{CallLanguage, Phrases};
use crate::conversation::reply::ReplyEvent;
use crate::conversation::tools::Tools;
use crate::conversation::turn_detector::{TurnEvent, TurnSettings};
use crate::conversation::{
    Assistant, Conversation, Output, ReplySettings, Settings, Tasks, Update,
};
use crate::engines::schedule::{Due, Lane};
use crate::engines::{
    ChatMessage, Grammar, LlmEvent, SpeechToText, TextGenerator, TextStream, TextToSpeech,
    Transcript, TurnEndModel,
};
use crate::metrics::{Metrics, Transport};

pub const RATE: u32 = 16_000;

/// Hears the scripted words in their scripted language, one utterance (or part of one)
/// after another, and keeps how many samples it was given each time; a transcription
/// stopped while it was held hears nothing and takes no words from the script.
pub struct FakeStt {
    script: Mutex<VecDeque<(String, String)>>,
    pub calls: Mutex<Vec<usize>>,
    /// Held by a test, it keeps every transcription waiting.
    pub hold: Mutex<()>,
}

impl SpeechToText for FakeStt {
    fn transcribe(&self, samples: &[f32], stop: &AtomicBool) -> Result<Transcript> {
        let _held = self.hold.lock().unwrap();
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("transcription stopped");
        }
        self.calls.lock().unwrap().push(samples.len());
        let (text, language) = self.script.lock().unwrap().pop_front().unwrap_or_default();
        Ok(Transcript { text, language })
    }
}

/// Writes the scripted reply word by word, and keeps the prompts it was given.
pub struct FakeLlm {
    reply: String,
    pub prompts: Mutex<Vec<Vec<ChatMessage>>>,
}

impl TextGenerator for FakeLlm {
    fn reply(
        &self,
        messages: Vec<ChatMessage>,
        _grammar: Option<&Grammar>,
        _due: Due,
    ) -> Result<TextStream> {
        self.prompts.lock().unwrap().push(messages);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let words: Vec<&str> = self.reply.split_inclusive(' ').collect();
        for w in &words {
            tx.send(LlmEvent::Text(w.to_string())).unwrap();
        }
        tx.send(LlmEvent::Done {
            prompt_tokens: 10,
            prompt_evaluated: 10,
            generated: words.len(),
        })
        .unwrap();
        Ok(TextStream::new(rx, Arc::new(AtomicBool::new(false))))
    }

    fn lane(&self) -> Lane {
        Lane {
            places: 1,
            ..Lane::default()
        }
    }

    fn template_mentions(&self, _marker: &str) -> bool {
        false
    }
}

/// 10 ms of a quiet tone per character.
/// Voices 10 ms of sound per character, at its own rate (a voice's mark in the tests).
struct FakeTts {
    rate: u32,
}

impl TextToSpeech for FakeTts {
    fn synthesize(&self, text: &str) -> Result<Pcm> {
        let n = text.chars().count() * self.rate as usize / 100;
        Ok(Pcm {
            samples: (0..n)
                .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
                .collect(),
            rate: self.rate,
        })
    }
}

/// An end-of-turn model that always hears the same probability (None: it fails).
pub struct FakeTurnModel(pub Option<f32>);

impl TurnEndModel for FakeTurnModel {
    fn finished(&self, _audio: &Pcm) -> Result<f32> {
        self.0.ok_or_else(|| anyhow::anyhow!("the model broke"))
    }
}

/// [`assistant`], hearing the end of the caller's turns through `model`.
pub fn assistant_with_turn_model(
    heard: &[&str],
    reply: &str,
    model: FakeTurnModel,
) -> Arc<Assistant> {
    let script = heard.iter().map(|s| (s.to_string(), "en".into())).collect();
    let (a, _, _) = build(script, reply, "Be brief.", None);
    Arc::new(a.with_turn_model(Some(Arc::new(model))))
}

/// The rate of the English voice of [`bilingual_assistant`] (the base voice's is [`RATE`]).
pub const EN_VOICE_RATE: u32 = 8_000;

fn reply_settings() -> ReplySettings {
    ReplySettings {
        max_sentences: 2,
        first_clause_words: 0,
        sequential: false,
        hangup_phrases: vec!["goodbye".into()],
        reprompt_text: "Say again?".into(),
        sentence_pause_ms: 100,
        keypad_text: "(pressed {keys})".into(),
    }
}

pub fn assistant(
    heard: &[&str],
    reply: &str,
    tools: Option<Tools>,
) -> (Arc<Assistant>, Arc<FakeLlm>) {
    let (a, llm, _) = assistant_hearing(heard, reply, tools);
    (a, llm)
}

/// [`assistant`], with its speech recognition to look into.
pub fn assistant_hearing(
    heard: &[&str],
    reply: &str,
    tools: Option<Tools>,
) -> (Arc<Assistant>, Arc<FakeLlm>, Arc<FakeStt>) {
    let script = heard.iter().map(|s| (s.to_string(), "en".into())).collect();
    let (a, llm, stt) = build(script, reply, "Be brief.", tools);
    (Arc::new(a), llm, stt)
}

/// A line whose base keys are Russian (the system prompt [`RU_PROMPT`], the reprompt
/// [`RU_REPROMPT`]), with English words and an English voice (an empty `[languages.ru]`:
/// the base keys for Russian callers), answering in the language heard when `setting` is "auto"; it hears
/// the scripted `(words, language)`.
pub fn bilingual_assistant(
    heard: &[(&str, &str)],
    setting: CallLanguage,
) -> (Arc<Assistant>, Arc<FakeLlm>) {
    let script = heard
        .iter()
        .map(|(text, lang)| (text.to_string(), lang.to_string()))
        .collect();
    let (a, llm, _) = build(script, "Okay.", RU_PROMPT, None);
    let base = Phrases {
        system_prompt: RU_PROMPT.into(),
        reprompt_text: RU_REPROMPT.into(),
        kb_handoff: String::new(),
        kb_instruction: String::new(),
        hangup_phrases: vec!["до свидания".into()],
        keypad_text: "(нажато {keys})".into(),
    };
    let en = Phrases {
        system_prompt: EN_PROMPT.into(),
        reprompt_text: EN_REPROMPT.into(),
        hangup_phrases: vec!["goodbye".into()],
        keypad_text: "(pressed {keys})".into(),
        ..base.clone()
    };
    let phrases = [("en".to_string(), en), ("ru".to_string(), base)];
    let english: Arc<dyn TextToSpeech> = Arc::new(FakeTts {
        rate: EN_VOICE_RATE,
    });
    let mut a = a
        .with_languages(setting, phrases.into_iter().collect())
        .with_voices([("en".to_string(), english)].into_iter().collect());
    a.settings.reprompt_text = RU_REPROMPT.into();
    (Arc::new(a), llm)
}

pub const RU_PROMPT: &str = "Отвечай кратко.";
pub const RU_REPROMPT: &str = "Повторите?";
pub const EN_PROMPT: &str = "Be brief, in English.";
pub const EN_REPROMPT: &str = "Sorry, once more?";

fn build(
    script: VecDeque<(String, String)>,
    reply: &str,
    system_prompt: &str,
    tools: Option<Tools>,
) -> (Assistant, Arc<FakeLlm>, Arc<FakeStt>) {
    let llm = Arc::new(FakeLlm {
        reply: reply.into(),
        prompts: Mutex::default(),
    });
    let stt = Arc::new(FakeStt {
        script: Mutex::new(script),
        calls: Mutex::default(),
        hold: Mutex::default(),
    });
    let a = Assistant::new(llm.clone(), system_prompt, tools, reply_settings())
        .with_speech(stt.clone(), Arc::new(FakeTts { rate: RATE }));
    (a, llm, stt)
}

fn call() -> Arc<CallRecorder> {
    let log = CallLog::new(None, Arc::new(Metrics::default()), Default::default());
    let calls = Calls::new(Duration::from_secs(60), 1, Arc::new(log));
    calls.open(&CallId::parse("test-call").unwrap(), Transport::Stream)
}

/// A conversation on fake engines, its clock, and everything it has output.
pub struct Harness {
    pub conversation: Conversation,
    tasks: Tasks,
    /// End-of-turn verdicts taken in and not yet waited for ([`Self::verdict`]).
    verdicts: usize,
    pub call: Arc<CallRecorder>,
    pub now: Instant,
    pub out: Vec<Output>,
}

impl Harness {
    pub fn new(assistant: Arc<Assistant>, greeting: &str) -> Self {
        let settings = Settings {
            turns: TurnSettings {
                vad_mode: 3,
                min_speech_ms: 200,
                end_silence_ms: 500,
                speculate_ms: 200,
                partial_ms: 0,
                max_turn_ms: 30_000,
            },
            complete_ms: 300,
            unfinished_ms: 1000,
            threshold: 0.5,
            greeting: greeting.into(),
            barge_in: true,
            barge_in_min_ms: 300,
            backchannel_ms: 350,
            backchannels: crate::conversation::backchannel::Backchannels::new(
                &crate::conversation::backchannel::Backchannels::builtin(),
            ),
            resume_within: Duration::from_secs(2),
            lead: Duration::from_millis(200),
            keypad: crate::conversation::keypad::KeypadSettings {
                gap: Duration::from_millis(1000),
                actions: [('0', crate::config::KeyAction::Operator)].into(),
            },
        };
        let mut conversation = Conversation::new(assistant.clone(), settings);
        let call = call();
        let now = Instant::now();
        let out = conversation.start(call.clone(), RATE, RATE, now);
        Self {
            conversation,
            tasks: Tasks::new(assistant),
            verdicts: 0,
            call,
            now,
            out,
        }
    }

    /// The caller spoke a turn of one second, which ends now.
    pub fn caller_turn(&mut self) {
        let speech = vec![1000i16; RATE as usize];
        self.conversation
            .on_turn_event(TurnEvent::TurnEnded(speech), self.now);
    }

    /// The caller's audio, in 20 ms frames as the clock runs.
    pub fn hear(&mut self, samples: &[i16]) {
        for frame in samples.chunks(RATE as usize / 50) {
            self.now += Duration::from_millis(20);
            let out = self.conversation.push_audio(frame, self.now);
            self.out.extend(out);
            let out = self.conversation.tick(self.now);
            self.out.extend(out);
        }
    }

    /// Takes in the reply's progress until it is complete.
    pub async fn settle(&mut self) {
        while !self.next_update().await {}
    }

    /// Takes in updates until the end-of-turn model's verdict has come.
    pub async fn verdict(&mut self) {
        while self.verdicts == 0 {
            self.next_update().await;
        }
        self.verdicts -= 1;
    }

    /// Starts the work the conversation asked for, and takes in the next result of its
    /// work; whether it ended a reply.
    pub async fn next_update(&mut self) -> bool {
        self.run_effects();
        let update = tokio::time::timeout(Duration::from_secs(5), self.tasks.next())
            .await
            .expect("no update within 5 s");
        let ended = matches!(
            update,
            Update::Reply(_, ReplyEvent::Done(_) | ReplyEvent::Failed(_))
        );
        if matches!(update, Update::Verdict { .. }) {
            self.verdicts += 1;
        }
        let out = self.conversation.on_update(update, self.now);
        self.out.extend(out);
        ended
    }

    /// Starts the work the conversation has asked for.
    pub fn run_effects(&mut self) {
        self.tasks.run_all(self.conversation.effects());
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        let out = self.conversation.tick(self.now);
        self.out.extend(out);
    }

    /// Lets the clock run until voxd has stopped talking (at most a minute).
    pub fn play_out(&mut self) {
        for _ in 0..6000 {
            self.advance(10);
            if !self.conversation.speaking(self.now)
                && self.out.iter().any(|o| matches!(o, Output::AudioStop))
            {
                self.advance(10);
                return;
            }
        }
        panic!("voxd still talks after a minute: {:?}", self.texts());
    }

    pub fn texts(&self) -> Vec<String> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Replying(t) => Some(format!("replying {t}")),
                Output::Said { text, .. } => Some(format!("said {text}")),
                Output::Heard { text, .. } => Some(format!("heard {text}")),
                other if !matches!(other, Output::Audio(_)) => Some(format!("{other:?}")),
                _ => None,
            })
            .collect()
    }

    pub fn said(&self) -> Vec<(String, Option<f64>, bool)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Said {
                    text,
                    latency_ms,
                    interrupted,
                } => Some((text.clone(), *latency_ms, *interrupted)),
                _ => None,
            })
            .collect()
    }
}
