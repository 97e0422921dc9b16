//! The conversation's work on the engines: the [`Effect`]s a [`Conversation`] asks for (a
//! reply, the end-of-turn model on a pause, the words of speech over voxd, a part of the
//! utterance heard while the caller speaks), run here as tokio tasks, and their results
//! handed back as [`Update`]s. The machine itself starts nothing and waits for nothing.
//!
//! [`Conversation`]: super::Conversation

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::assistant::Stop;
use super::reply::{ReplyEvent, ReplyRequest};
use super::Assistant;
use crate::audio::Pcm;
use crate::engines::schedule::Deadline;

/// Work the conversation asks for; its result comes back as an [`Update`].
#[derive(Debug)]
pub enum Effect {
    /// Make reply `id` through the reply pipeline: its progress comes back as
    /// [`Update::Reply`].
    Reply {
        id: u64,
        request: ReplyRequest,
        /// The language the call is in, if known.
        language: Option<String>,
    },
    /// Reply `id` is no longer wanted: stop making it.
    Cancel(u64),
    /// The end-of-turn model hears the caller's turn so far at pause `pause`:
    /// [`Update::Verdict`].
    JudgePause { pause: u64, audio: Pcm },
    /// The words of speech over voxd, numbered `overlap`: [`Update::Overlap`].
    HearOverlap { overlap: u64, audio: Pcm },
    /// The words of part `part` of the utterance, heard while the caller speaks, unless
    /// `stop` is set first: [`Update::Partial`].
    Listen {
        part: u64,
        audio: Pcm,
        stop: Arc<Stop>,
    },
}

/// What the conversation's work reports; it goes back to [`Conversation::on_update`].
///
/// [`Conversation::on_update`]: super::Conversation::on_update
#[derive(Debug)]
pub enum Update {
    /// A reply's progress, tagged with the reply's number.
    Reply(u64, ReplyEvent),
    /// The end-of-turn model's probability that the caller had finished, for the pause
    /// numbered `pause` (None: the model failed).
    Verdict { pause: u64, finished: Option<f32> },
    /// The words of the caller's speech over voxd numbered `overlap` (None: not heard).
    Overlap { overlap: u64, words: Option<String> },
    /// The words of part `part` of the utterance (None: not heard, or stopped).
    Partial { part: u64, words: Option<String> },
}

/// The tasks of one conversation, and the channel their results come back on. Dropping it
/// stops the replies still being made.
pub struct Tasks {
    assistant: Arc<Assistant>,
    tx: mpsc::UnboundedSender<Update>,
    rx: mpsc::UnboundedReceiver<Update>,
    replies: HashMap<u64, JoinHandle<()>>,
}

impl Tasks {
    pub fn new(assistant: Arc<Assistant>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            assistant,
            tx,
            rx,
            replies: HashMap::new(),
        }
    }

    /// Starts the work `effects` ask for, in order.
    pub fn run_all(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.run(effect);
        }
    }

    /// Starts (or, for [`Effect::Cancel`], stops) the work `effect` asks for, in the
    /// current tracing span.
    pub fn run(&mut self, effect: Effect) {
        let (assistant, tx) = (self.assistant.clone(), self.tx.clone());
        let span = tracing::Span::current();
        match effect {
            Effect::Reply {
                id,
                request,
                language,
            } => {
                let task = async move {
                    let mut send = |ev| {
                        let _ = tx.send(Update::Reply(id, ev));
                    };
                    if let Err(e) = assistant.reply_in(request, language, &mut send).await {
                        send(ReplyEvent::Failed(format!("{e:#}")));
                    }
                };
                self.replies.insert(id, tokio::spawn(task.instrument(span)));
            }
            Effect::Cancel(id) => {
                if let Some(task) = self.replies.remove(&id) {
                    task.abort();
                }
            }
            Effect::JudgePause { pause, audio } => {
                let Some(model) = assistant.turn_model() else {
                    let _ = tx.send(Update::Verdict {
                        pause,
                        finished: None,
                    });
                    return;
                };
                tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let finished = model
                        .finished(&audio)
                        .map_err(|e| tracing::warn!("end-of-turn model failed: {e:#}"))
                        .ok();
                    let _ = tx.send(Update::Verdict { pause, finished });
                });
            }
            Effect::HearOverlap { overlap, audio } => {
                let task = async move {
                    let words = assistant
                        .transcribe(audio, Deadline::now())
                        .await
                        .map(|t| t.text)
                        .map_err(|e| tracing::warn!("cannot transcribe speech over voxd: {e:#}"))
                        .ok();
                    let _ = tx.send(Update::Overlap { overlap, words });
                };
                tokio::spawn(task.instrument(span));
            }
            Effect::Listen { part, audio, stop } => {
                let task = async move {
                    let words = assistant
                        .transcribe_unless(audio, Deadline::NONE, stop)
                        .await
                        .map(|t| t.text)
                        .map_err(|e| tracing::debug!("partial transcript failed: {e:#}"))
                        .ok();
                    let _ = tx.send(Update::Partial { part, words });
                };
                tokio::spawn(task.instrument(span));
            }
        }
    }

    /// The next result of the work. After a reply's last event its task is forgotten.
    pub async fn next(&mut self) -> Update {
        let update = self
            .rx
            .recv()
            .await
            .expect("the tasks hold a sender: the channel stays open");
        if let Update::Reply(id, ReplyEvent::Done(_) | ReplyEvent::Failed(_)) = &update {
            self.replies.remove(id);
        }
        update
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in self.replies.values() {
            task.abort();
        }
    }
}
