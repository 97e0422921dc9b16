//! One spoken reply, produced off the call's loop: transcribe the caller's turn, stream the
//! LLM's answer and voice each sentence as soon as it is written (or, in `sequential`
//! mode, everything in order, for comparison). Aborting the task cancels the generation.
//! Each answered turn's stage times go to the metrics.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::mpsc::UnboundedSender;

use crate::audio::{resample, wav::to_i16, Pcm};
use crate::engines::llm::ChatMessage;
use crate::engines::Engines;
use crate::metrics::{Metrics, Stage, Transport};
use crate::prompt::TurnPrompt;
use crate::tools::ToolCall;
use crate::turn::{ms, says_goodbye};

/// What a reply task reports to its call, tagged with the reply's number.
#[derive(Debug)]
pub enum ReplyEvent {
    /// What the caller said (empty: nothing intelligible).
    Heard(String),
    /// A piece of speech at the call's output rate and the text it says.
    Speech {
        samples: Vec<i16>,
        text: String,
    },
    /// The reply is complete; `hangup` when the caller said goodbye, `tool` what the model
    /// called.
    Done {
        hangup: bool,
        tool: Option<ToolCall>,
    },
    Failed(String),
}

/// Everything a reply needs, moved into its task.
pub struct ReplyJob {
    pub engines: Arc<Engines>,
    /// The call's history so far, without a system message ([`crate::prompt`] adds it).
    pub history: Vec<ChatMessage>,
    /// The caller's utterance at `in_rate` (None for a greeting).
    pub utterance: Option<(Vec<i16>, u32)>,
    /// Text to say without asking the LLM (the greeting).
    pub fixed_text: Option<String>,
    pub out_rate: u32,
    pub max_sentences: usize,
    pub hangup_phrases: Vec<String>,
    pub sequential: bool,
    /// The first piece may be a clause of this many words (0: whole sentences only).
    pub first_clause_words: usize,
    pub metrics: Option<Arc<Metrics>>,
}

/// Runs the job, sending events tagged with `id`; errors become `Failed`.
pub async fn run(job: ReplyJob, id: u64, tx: UnboundedSender<(u64, ReplyEvent)>) {
    let send = |ev| {
        let _ = tx.send((id, ev));
    };
    if let Err(e) = produce(job, &send).await {
        send(ReplyEvent::Failed(format!("{e:#}")));
    }
}

async fn produce(job: ReplyJob, send: &impl Fn(ReplyEvent)) -> Result<()> {
    let engines = job.engines.clone();
    if let Some(text) = &job.fixed_text {
        send(ReplyEvent::Speech {
            samples: speak(&engines, text, job.out_rate).await?,
            text: text.clone(),
        });
        send(ReplyEvent::Done {
            hangup: false,
            tool: None,
        });
        return Ok(());
    }
    let Some((samples, rate)) = &job.utterance else {
        return Ok(());
    };
    let audio = Pcm {
        samples: samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
        rate: *rate,
    };
    let started = Instant::now();
    let heard = crate::engines::transcribe(&engines, audio).await?.text;
    let mut stages = vec![(Stage::Stt, ms(started))];
    send(ReplyEvent::Heard(heard.clone()));
    if heard.is_empty() {
        send(ReplyEvent::Done {
            hangup: false,
            tool: None,
        });
        return Ok(());
    }
    let caller_hangup = says_goodbye(&heard, &job.hangup_phrases);
    let tool = match crate::prompt::for_turn(
        &engines.llm,
        engines.kb.as_ref(),
        &job.history,
        &heard,
        caller_hangup,
    )? {
        TurnPrompt::Ask(messages) => answer(&job, messages, &mut stages, send).await?,
        TurnPrompt::Handoff(text) => {
            let t = Instant::now();
            let samples = speak(&engines, &text, job.out_rate).await?;
            stages.push((Stage::TtsFirstAudio, ms(t)));
            send(ReplyEvent::Speech { samples, text });
            None
        }
    };
    if let Some(m) = &job.metrics {
        m.turn_answered(Transport::Stream);
        for (stage, took) in stages {
            m.stage_ms(Transport::Stream, stage, took);
        }
    }
    send(ReplyEvent::Done {
        hangup: caller_hangup,
        tool,
    });
    Ok(())
}

/// Streams the LLM's answer to `messages`, voicing it piece by piece (or whole, in
/// sequential mode); returns the tool the model called.
async fn answer(
    job: &ReplyJob,
    messages: Vec<ChatMessage>,
    stages: &mut Vec<(Stage, f64)>,
    send: &impl Fn(ReplyEvent),
) -> Result<Option<ToolCall>> {
    let llm_started = Instant::now();
    let mut stream = job.engines.llm.reply(messages)?;
    let mut sentences = Vec::new();
    let (mut pieces, mut complete) = (0, 0);
    loop {
        // The first piece may be a long clause: the caller hears voxd sooner.
        let clause_words = if pieces == 0 && !job.sequential {
            job.first_clause_words
        } else {
            0
        };
        let Some(piece) = stream.next_piece(clause_words).await? else {
            break;
        };
        pieces += 1;
        if crate::sentences::is_complete(&piece) {
            complete += 1;
        }
        if job.sequential {
            sentences.push(piece);
        } else {
            let t = Instant::now();
            let samples = speak(&job.engines, &piece, job.out_rate).await?;
            if pieces == 1 {
                stages.push((Stage::TtsFirstAudio, ms(t)));
            }
            send(ReplyEvent::Speech {
                samples,
                text: piece,
            });
        }
        if job.max_sentences > 0 && complete >= job.max_sentences {
            break;
        }
    }
    // Past the sentence limit the reply is only read for its tool call.
    let tool = stream.finish().await?;
    stages.push((Stage::Llm, ms(llm_started)));
    if let Some(first) = stream.first_text() {
        stages.push((Stage::LlmFirstToken, first.as_secs_f64() * 1000.0));
    }
    drop(stream);
    if job.sequential && !sentences.is_empty() {
        let text = sentences.join(" ");
        let t = Instant::now();
        let samples = speak(&job.engines, &text, job.out_rate).await?;
        stages.push((Stage::TtsFirstAudio, ms(t)));
        send(ReplyEvent::Speech { samples, text });
    }
    Ok(tool)
}

/// Synthesizes `text` at `rate` as 16-bit samples.
async fn speak(engines: &Arc<Engines>, text: &str, rate: u32) -> Result<Vec<i16>> {
    let e = engines.clone();
    let text = text.to_string();
    tokio::task::spawn_blocking(move || {
        let pcm = resample::to_rate(e.tts.synthesize(&text)?, rate)?;
        Ok(pcm.samples.iter().map(|&s| to_i16(s)).collect())
    })
    .await?
}
