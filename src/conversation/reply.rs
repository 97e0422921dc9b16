//! The reply pipeline, the one road from a caller's turn to voxd's speech for every mode
//! (recording turn, media stream, microphone, `voxd chat`, `voxd kb ask`, the greeting):
//! transcript → goodbye check → prompt (with knowledge passages) → LLM text →
//! [`Chunker`] pieces (one sentence limit, the tool call parsed once) → speech. Progress
//! goes out as [`ReplyEvent`]s in order; the consumer decides what to do with them. Every
//! engine job of a reply carries its deadline ([`Pacing`]): the first words are due now,
//! a live reply's later pieces when the speech before them has played.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::assistant::Assistant;
use super::chunker::Chunker;
use super::listening::join;
use super::prompt::{self, TurnPrompt};
use super::tools::ToolCall;
use crate::audio::Pcm;
use crate::engines::schedule::{Deadline, Due};
use crate::engines::ChatMessage;
pub use crate::metrics::Timings;
use crate::sentences;

/// What a reply answers.
#[derive(Debug, Clone)]
pub enum ReplyInput {
    /// The caller's spoken turn, at any rate.
    Audio(Pcm),
    /// The rest of a spoken turn whose beginning was heard already (`before`).
    AudioAfter { before: String, audio: Pcm },
    /// The caller's words, already text (`voxd chat`, `voxd kb ask`).
    Words(String),
    /// Text to say as it is, without the LLM (the greeting, the reprompt).
    Fixed(String),
}

/// One reply to make.
#[derive(Debug, Clone)]
pub struct ReplyRequest {
    /// The conversation so far, without a system message.
    pub memory: Vec<ChatMessage>,
    pub input: ReplyInput,
    /// The rate the speech comes at (None: the voice's own).
    pub rate: Option<u32>,
    /// The speech plays as it comes (media stream, microphone): the first piece may be a
    /// short clause, so the caller hears voxd sooner, and later pieces are due only when
    /// the speech before them has played.
    pub live: bool,
    /// When the first words are due, if not now: a speculative reply's is when the turn
    /// would end, and its owner moves it once the turn has really ended.
    pub due: Option<Due>,
}

/// How long before its deadline a live reply's later piece is voiced: enough to wait for
/// the cores behind a few other callers' first words and be synthesized, no more, so that
/// it does not take the cores from them while the caller still hears the piece before it.
const SYNTHESIS_LEAD: Duration = Duration::from_millis(1500);

/// When a reply's next piece is due: at first now, then, for a live reply, when the
/// speech already sent has played (the LLM reads the same [`Due`]).
struct Pacing {
    live: bool,
    /// Once speech went out: when what was sent has played.
    due: Due,
}

impl Pacing {
    fn new(live: bool, due: Option<Due>) -> Self {
        Self {
            live,
            due: due.unwrap_or_else(|| Due::new(Deadline::now())),
        }
    }

    fn next_due(&self) -> Deadline {
        self.due.get()
    }

    /// When the next piece should be voiced: [`SYNTHESIS_LEAD`] before it is due (None:
    /// now).
    fn synthesis_start(&self, now: Instant) -> Option<Instant> {
        let at = self.next_due().instant()?.checked_sub(SYNTHESIS_LEAD)?;
        (at > now).then_some(at)
    }

    /// A piece (`text`) is about to be voiced: returns its synthesis' deadline. Until its
    /// speech is made, a live reply's text after it is needed only once it has played, at
    /// the earliest its shortest spoken length later: so the LLM steps aside for this
    /// synthesis instead of taking half the cores from it.
    fn voicing(&mut self, text: &str, now: Instant) -> Deadline {
        let due = self.next_due();
        if self.live {
            let chars = text.chars().count() as u32;
            self.due
                .set(Deadline::at(plays_from(due, now) + SPOKEN_PER_CHAR * chars));
        }
        due
    }

    /// `audio`, due at `due`, went out at `now`: a live reply's next piece is due when it
    /// has played.
    fn sent(&mut self, audio: &Pcm, due: Deadline, now: Instant) {
        if !self.live {
            return;
        }
        let played = plays_from(due, now) + Duration::from_secs_f64(audio.duration_secs());
        self.due.set(Deadline::at(played));
    }
}

/// When a piece due at `due` starts playing if it goes out at `now`: queued behind what is
/// still playing, else from now.
fn plays_from(due: Deadline, now: Instant) -> Instant {
    due.instant().map_or(now, |t| t.max(now))
}

/// The least time a character of text takes to say (fast speech is about 15 characters
/// a second; the voices speak 60–65 ms a character).
const SPOKEN_PER_CHAR: Duration = Duration::from_millis(30);

/// What a reply produces, in this order: `Heard` (for a turn), `Speech` pieces, `Done`.
#[derive(Debug)]
pub enum ReplyEvent {
    /// What the caller said (empty: nothing intelligible; the reply ends there), the
    /// language Whisper heard, and the call's language after this turn, which the reply is
    /// made in (None: the base keys; see [`super::language`]).
    Heard {
        text: String,
        language: String,
        call_language: Option<String>,
    },
    /// A piece of speech and the text it says (empty audio for an assistant without voice).
    Speech { audio: Pcm, text: String },
    /// The reply is complete.
    Done(ReplyEnd),
    /// The reply failed (sent by whoever runs the pipeline in a task).
    Failed(String),
}

/// How a reply ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyEnd {
    /// The caller said one of `calls.hangup_phrases`.
    pub goodbye: bool,
    /// The tool the model called, if any.
    pub tool: Option<ToolCall>,
    pub timings: Timings,
}

impl ReplyEnd {
    /// What follows the reply.
    pub fn action(&self) -> Action {
        Action::after(self.goodbye, self.tool.as_ref())
    }
}

/// What the scenario should do after playing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Continue,
    Hangup,
    /// Connect the caller to the operator (`tools.operator_phone`).
    Transfer,
}

impl Action {
    /// What follows a reply: the caller's goodbye or the model's hangup ends the call, a
    /// transfer hands it over; any other tool (save_lead) lets it go on.
    pub fn after(caller_goodbye: bool, tool: Option<&ToolCall>) -> Self {
        match tool {
            Some(ToolCall::Transfer) => Action::Transfer,
            Some(ToolCall::Hangup) => Action::Hangup,
            _ if caller_goodbye => Action::Hangup,
            _ => Action::Continue,
        }
    }
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    millis(t.elapsed())
}

/// A duration in milliseconds.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How a reply's speech comes out: at which rate (None: the voice's own), in the voice of
/// which language (None: the base voice).
#[derive(Clone, Copy)]
struct SpeechOut<'a> {
    rate: Option<u32>,
    language: Option<&'a str>,
}

impl<'a> SpeechOut<'a> {
    fn new(rate: Option<u32>, language: Option<&'a str>) -> Self {
        Self { rate, language }
    }
}

impl Assistant {
    /// Makes the reply, sending its progress to `send` as it happens, on a call with no
    /// language yet ([`Self::reply_in`]).
    pub async fn reply(
        &self,
        req: ReplyRequest,
        send: &mut (impl FnMut(ReplyEvent) + Send),
    ) -> Result<()> {
        self.reply_in(req, None, send).await
    }

    /// [`Self::reply`] on a call whose language so far is `language`: the turn is answered
    /// in the language it is heard in, or the call's ([`super::language`]).
    pub async fn reply_in(
        &self,
        req: ReplyRequest,
        language: Option<String>,
        send: &mut (impl FnMut(ReplyEvent) + Send),
    ) -> Result<()> {
        let mut end = ReplyEnd::default();
        let ReplyRequest {
            memory,
            input,
            rate,
            live,
            due,
        } = req;
        let mut pacing = Pacing::new(live, due);
        let (heard, language) = match input {
            ReplyInput::Fixed(text) => {
                let out = SpeechOut::new(rate, language.as_deref());
                self.voice(&text, out, &mut pacing, &mut end.timings, send)
                    .await?;
                send(ReplyEvent::Done(end));
                return Ok(());
            }
            ReplyInput::Words(text) => {
                // Typed words and read-out keys are the caller's turn like heard ones.
                send(ReplyEvent::Heard {
                    text: text.clone(),
                    language: language.clone().unwrap_or_default(),
                    call_language: language.clone(),
                });
                (Some(text), language)
            }
            ReplyInput::Audio(audio) => {
                self.hear(audio, "", language, &pacing, &mut end, send)
                    .await?
            }
            ReplyInput::AudioAfter { before, audio } => {
                self.hear(audio, &before, language, &pacing, &mut end, send)
                    .await?
            }
        };
        let Some(heard) = heard else {
            send(ReplyEvent::Done(end));
            return Ok(());
        };
        let speech = self.in_language(language.as_deref());
        let out = SpeechOut::new(rate, language.as_deref());
        end.goodbye = says_goodbye(&heard, speech.hangup_phrases);
        let turn = prompt::for_turn_in(speech.head, speech.kb, &memory, &heard, end.goodbye)?;
        match turn {
            TurnPrompt::Handoff(text) => {
                self.voice(&text, out, &mut pacing, &mut end.timings, send)
                    .await?
            }
            TurnPrompt::Ask(mut messages) => {
                // After the head (the configured words), every message is untrusted text.
                for m in &mut messages[speech.head.len()..] {
                    m.content = self.llm().plain(&m.content);
                }
                end.tool = self
                    .answer(messages, out, &mut pacing, &mut end.timings, send)
                    .await?;
            }
        }
        send(ReplyEvent::Done(end));
        Ok(())
    }

    /// Transcribes the caller's `audio`, which follows the words `before` (heard already,
    /// while they spoke), on a call whose language so far is `language`, and sends what was
    /// heard; returns it (None when nothing intelligible was) and the language the turn is
    /// answered in.
    async fn hear(
        &self,
        audio: Pcm,
        before: &str,
        language: Option<String>,
        pacing: &Pacing,
        end: &mut ReplyEnd,
        send: &mut impl FnMut(ReplyEvent),
    ) -> Result<(Option<String>, Option<String>)> {
        let t = Instant::now();
        let transcript = self.transcribe(audio, pacing.next_due()).await?;
        end.timings.stt = ms(t);
        let text = join(before, &transcript.text);
        let words = text.split_whitespace().count();
        let language = self.turn_language(&transcript.language, words, language.as_deref());
        send(ReplyEvent::Heard {
            text: text.clone(),
            language: transcript.language,
            call_language: language.clone(),
        });
        Ok(((!text.is_empty()).then_some(text), language))
    }

    /// Voices one piece by its deadline and sends it; the first piece's synthesis time is
    /// noted.
    async fn voice(
        &self,
        text: &str,
        out: SpeechOut<'_>,
        pacing: &mut Pacing,
        timings: &mut Timings,
        send: &mut impl FnMut(ReplyEvent),
    ) -> Result<()> {
        if let Some(at) = pacing.synthesis_start(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
        let t = Instant::now();
        let due = pacing.voicing(text, t);
        let audio = self.speak(text, out.rate, due, out.language).await?;
        if timings.tts_first_audio == 0.0 {
            timings.tts_first_audio = ms(t);
        }
        pacing.sent(&audio, due, Instant::now());
        send(ReplyEvent::Speech {
            audio,
            text: text.to_string(),
        });
        Ok(())
    }

    /// Streams the LLM's answer to `messages`, voicing it piece by piece (or whole, in
    /// sequential mode) up to the sentence limit, the first piece of a live reply possibly
    /// a clause; returns the tool the model called.
    async fn answer(
        &self,
        messages: Vec<ChatMessage>,
        out: SpeechOut<'_>,
        pacing: &mut Pacing,
        timings: &mut Timings,
        send: &mut impl FnMut(ReplyEvent),
    ) -> Result<Option<ToolCall>> {
        let started = Instant::now();
        let first_clause = pacing.live.then_some(self.settings.first_clause_words);
        let stream = self
            .llm()
            .reply(messages, self.grammar.as_ref(), pacing.due.clone())?;
        let mut chunker = Chunker::new(stream, self.tools.clone());
        let s = &self.settings;
        let (mut pieces, mut complete, mut held) = (0, 0, Vec::new());
        loop {
            let clause_words = match first_clause {
                Some(words) if pieces == 0 && !s.sequential => words,
                _ => 0,
            };
            let Some(piece) = chunker.next_piece(clause_words).await? else {
                break;
            };
            pieces += 1;
            complete += usize::from(sentences::is_complete(&piece));
            if s.sequential {
                held.push(piece);
            } else {
                self.voice(&piece, out, pacing, timings, send).await?;
            }
            if s.max_sentences > 0 && complete >= s.max_sentences {
                break;
            }
        }
        // Past the sentence limit the reply is only read for its tool call, which the
        // caller waits for once the speech has played: read it now.
        pacing.due.set(Deadline::now());
        let tool = chunker.finish().await?;
        // The text was complete when the model finished (or when voxd stopped reading).
        let text_done = chunker.text_done().unwrap_or_else(Instant::now);
        timings.llm = millis(text_done - started);
        timings.llm_first_token = chunker.first_text().map_or(timings.llm, millis);
        drop(chunker);
        if !held.is_empty() {
            self.voice(&held.join(" "), out, pacing, timings, send)
                .await?;
        }
        timings.tts = ms(text_done);
        Ok(tool)
    }
}

/// Whether the caller's words contain one of the configured goodbye phrases.
pub fn says_goodbye(user_text: &str, phrases: &[String]) -> bool {
    let lower = user_text.to_lowercase();
    phrases
        .iter()
        .any(|p| !p.is_empty() && lower.contains(&p.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_follows_the_tool_then_the_callers_goodbye() {
        let lead = ToolCall::SaveLead(super::super::tools::Lead {
            name: "A".into(),
            phone: "+15551234567".into(),
            request: "x".into(),
        });
        assert_eq!(Action::after(false, None), Action::Continue);
        assert_eq!(Action::after(true, None), Action::Hangup);
        assert_eq!(Action::after(false, Some(&lead)), Action::Continue);
        assert_eq!(Action::after(true, Some(&lead)), Action::Hangup);
        assert_eq!(
            Action::after(true, Some(&ToolCall::Transfer)),
            Action::Transfer
        );
        assert_eq!(
            Action::after(false, Some(&ToolCall::Hangup)),
            Action::Hangup
        );
    }

    #[test]
    fn a_live_replys_next_piece_is_due_when_the_speech_before_it_has_played() {
        let second = |secs: f64| Pcm {
            samples: vec![0.0; (secs * 16_000.0) as usize],
            rate: 16_000,
        };
        let mut live = Pacing::new(true, None);
        // The first piece goes out after the reply began.
        let t0 = Instant::now();
        assert!(live.next_due() <= Deadline::now());
        assert_eq!(
            live.synthesis_start(t0),
            None,
            "the first piece is voiced at once"
        );
        let first = live.voicing("I can help.", t0);
        assert!(first <= Deadline::now(), "its synthesis is due now");
        // While it is voiced, the text after it is due once it could have played
        // (deadlines keep microseconds).
        let after = live.next_due().instant().unwrap() + Duration::from_millis(1);
        assert!(after >= t0 + SPOKEN_PER_CHAR * 11, "{after:?}");
        live.sent(&second(2.0), first, t0);
        // Sent while the first still plays: queued behind it.
        let t1 = t0 + Duration::from_millis(500);
        let next = live.voicing("Yes.", t1);
        live.sent(&second(1.5), next, t1);
        let due = live.next_due().instant().unwrap();
        let expected = t0 + Duration::from_millis(3500);
        assert!(due <= expected && expected - due < Duration::from_millis(1));
        // Voiced just in time: SYNTHESIS_LEAD before it is due, not at once.
        assert_eq!(live.synthesis_start(t0), Some(due - SYNTHESIS_LEAD));
        assert_eq!(live.synthesis_start(due), None);
        // Sent after the speech ran out: played from then.
        let late = t0 + Duration::from_secs(10);
        let last = live.voicing("Bye.", late);
        live.sent(&second(1.0), last, late);
        let due = live.next_due().instant().unwrap();
        assert!(due > t0 + Duration::from_millis(10_999));

        let mut whole = Pacing::new(false, None);
        let first = whole.next_due();
        let voiced = whole.voicing("All of it.", t0);
        assert_eq!(voiced, first);
        whole.sent(&second(2.0), voiced, t0);
        assert_eq!(
            whole.next_due(),
            first,
            "a recording's pieces are all due at once"
        );
    }

    #[test]
    fn goodbye_phrases_match_case_insensitively() {
        let p = vec!["goodbye".to_string(), "до свидания".to_string()];
        assert!(says_goodbye("OK, Goodbye.", &p));
        assert!(says_goodbye("Спасибо, До свидания", &p));
        assert!(!says_goodbye("good morning", &p));
    }
}
