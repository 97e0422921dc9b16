//! A whole turn on a recording (the recording-URL flow): the reply pipeline's pieces
//! joined into one audio file, with the reprompt when nothing intelligible was heard.

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
    pub language: String,
    pub reply_text: String,
    pub action: Action,
    /// The tool the model called, if any.
    pub tool: Option<ToolCall>,
    pub reply_audio: Pcm,
}

/// Answers `audio` after `memory`, the reply at `rate` (None: the voice's own); the
/// pipeline's stage times go into `timings`.
pub async fn run(
    assistant: &Assistant,
    memory: Vec<ChatMessage>,
    audio: Pcm,
    rate: Option<u32>,
    timings: &mut Timings,
) -> Result<TurnOutcome> {
    let mut collected = Collected::default();
    let request = ReplyRequest {
        memory,
        input: ReplyInput::Audio(audio),
        rate,
        live: false,
        due: None,
    };
    assistant
        .reply(request, &mut |ev| collected.take(ev))
        .await?;
    let mut end = collected
        .end
        .take()
        .ok_or_else(|| anyhow!("the reply did not finish"))?;
    if collected.pieces.is_empty() {
        let reprompt = ReplyRequest {
            memory: Vec::new(),
            input: ReplyInput::Fixed(assistant.settings.reprompt_text.clone()),
            rate,
            live: false,
            due: None,
        };
        let stt = end.timings.stt;
        assistant
            .reply(reprompt, &mut |ev| collected.take(ev))
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
        reply_text: texts.join(" "),
        action: end.action(),
        tool: end.tool,
        reply_audio: crate::audio::join(audio, pause),
    })
}

/// The events of a reply, gathered.
#[derive(Default)]
struct Collected {
    heard: String,
    language: String,
    pieces: Vec<(String, Pcm)>,
    end: Option<ReplyEnd>,
}

impl Collected {
    fn take(&mut self, ev: ReplyEvent) {
        match ev {
            ReplyEvent::Heard { text, language } => {
                self.heard = text;
                self.language = language;
            }
            ReplyEvent::Speech { audio, text } => self.pieces.push((text, audio)),
            ReplyEvent::Done(end) => self.end = Some(end),
            ReplyEvent::Failed(_) => {}
        }
    }
}
