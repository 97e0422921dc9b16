//! A whole turn on a recording (the recording-URL flow): the reply pipeline's pieces
//! joined into one audio file, with the reprompt when nothing intelligible was heard. The
//! progress can be watched as it happens (the progressive mode streams the pieces). The
//! turn is answered, and the reprompt said, in the call's language ([`super::language`]).

use anyhow::{anyhow, Result};

use super::assistant::Assistant;
use super::reply::{Action, ReplyEnd, ReplyEvent, ReplyInput, ReplyRequest, Timings};
use super::tools::ToolCall;
use crate::audio::Pcm;
use crate::engines::ChatMessage;

/// A finished turn.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub user_text: String,
    /// The language Whisper heard.
    pub language: String,
    /// The call's language after this turn (None: the base keys).
    pub call_language: Option<String>,
    pub reply_text: String,
    pub action: Action,
    /// The tool the model called, if any.
    pub tool: Option<ToolCall>,
    pub reply_audio: Pcm,
}

/// How a recording turn's reply is made and watched.
pub struct Delivery<'a, F: FnMut(&ReplyEvent) + Send> {
    /// The reply at this rate (None: the voice's own).
    pub rate: Option<u32>,
    /// The speech plays as it comes (progressive playback): later pieces are due only when
    /// the speech before them has played.
    pub live: bool,
    /// Sees every event of the reply (and of the reprompt) as it happens.
    pub watch: &'a mut F,
}

/// Answers `audio` after `memory` on a call whose language so far is `language`; the
/// pipeline's stage times go into `timings`.
pub async fn run<F: FnMut(&ReplyEvent) + Send>(
    assistant: &Assistant,
    memory: Vec<ChatMessage>,
    language: Option<String>,
    audio: Pcm,
    delivery: Delivery<'_, F>,
    timings: &mut Timings,
) -> Result<TurnOutcome> {
    let Delivery { rate, live, watch } = delivery;
    let mut collected = Collected {
        watch,
        heard: String::new(),
        language: String::new(),
        call_language: language.clone(),
        pieces: Vec::new(),
        end: None,
    };
    let request = ReplyRequest {
        memory,
        input: ReplyInput::Audio(audio),
        rate,
        live,
        due: None,
    };
    assistant
        .reply_in(request, language, &mut |ev| collected.take(ev))
        .await?;
    let mut end = collected
        .end
        .take()
        .ok_or_else(|| anyhow!("the reply did not finish"))?;
    if collected.pieces.is_empty() {
        let language = collected.call_language.clone();
        let reprompt = ReplyRequest {
            memory: Vec::new(),
            input: ReplyInput::Fixed(assistant.reprompt_text(language.as_deref()).to_string()),
            rate,
            live,
            due: None,
        };
        let stt = end.timings.stt;
        assistant
            .reply_in(reprompt, language, &mut |ev| collected.take(ev))
            .await?;
        end = collected.end.take().unwrap_or_default();
        end.timings.stt = stt;
    }
    *timings = Timings {
        download: timings.download,
        decode: timings.decode,
        ..end.timings.clone()
    };
    let pause = assistant.settings.sentence_pause_ms;
    let (texts, audio): (Vec<String>, Vec<Pcm>) = collected.pieces.into_iter().unzip();
    Ok(TurnOutcome {
        user_text: collected.heard,
        language: collected.language,
        call_language: collected.call_language,
        reply_text: texts.join(" "),
        action: end.action(),
        tool: end.tool,
        reply_audio: crate::audio::join(audio, pause),
    })
}

/// The events of a reply, gathered (each shown to `watch` first).
struct Collected<'a, F> {
    watch: &'a mut F,
    heard: String,
    language: String,
    call_language: Option<String>,
    pieces: Vec<(String, Pcm)>,
    end: Option<ReplyEnd>,
}

impl<F: FnMut(&ReplyEvent)> Collected<'_, F> {
    fn take(&mut self, ev: ReplyEvent) {
        (self.watch)(&ev);
        match ev {
            ReplyEvent::Heard {
                text,
                language,
                call_language,
            } => {
                self.heard = text;
                self.language = language;
                self.call_language = call_language;
            }
            ReplyEvent::Speech { audio, text } => self.pieces.push((text, audio)),
            ReplyEvent::Done(end) => self.end = Some(end),
            ReplyEvent::Failed(_) => {}
        }
    }
}
