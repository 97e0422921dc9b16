//! The recording flow's progressive mode (`"progressive": true` in `process_audio`): voxd
//! answers as soon as the caller's words are transcribed, with a link to reply audio that
//! grows while the LLM writes and Piper voices it (the scenario plays it with
//! `progressivePlayback`), and the turn's result (reply text, action, transfer) at
//! `GET /voximplant/replies/{id}` once the reply is complete. The audio is MP3 (what
//! Voximplant documents progressive playback for) or WAV, and never falls behind real time:
//! while the next sentence is being made, silence keeps the player fed ([`Pacer`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::audio_store::{Growing, ReplyFormat, Stored};
use super::process_audio::finished;
use super::RecordingContext;
use crate::audio::mp3::{self, Mp3Encoder};
use crate::audio::{resample, wav, Pcm};
use crate::calls::CallRecorder;
use crate::conversation::recording_turn::{self, Delivery};
use crate::conversation::reply::{ms, ReplyEvent, Timings};
use crate::http::error::ApiError;

/// The answer to a progressive turn, sent once the caller's words are known.
#[derive(Debug, Serialize)]
pub struct Started {
    call_id: String,
    user_text: String,
    language: String,
    /// The reply's audio, growing as it is made: play it with `progressivePlayback`.
    reply_audio_url: String,
    /// `GET` it (with the token) once the audio has played: the turn's result.
    reply_url: String,
    progressive: bool,
    /// Download, decode and transcription so far; `total`: request → this answer.
    timings_ms: Timings,
}

/// What the reply's first steps tell the waiting request: the words, or why not.
type Heard = Result<(String, String, f64), String>;

/// Starts the reply to `pcm` on `call` in the background; returns once the caller's words
/// are transcribed.
pub async fn start(
    ctx: Arc<RecordingContext>,
    call: Arc<CallRecorder>,
    pcm: Pcm,
    format: ReplyFormat,
    mut timings: Timings,
    started: Instant,
) -> Result<Started, ApiError> {
    let (id, growing) = ctx.audio.open(format);
    let (heard_tx, heard_rx) = oneshot::channel::<Heard>();
    let reply_audio_url = ctx.audio_url_as(id.clone(), format);
    let reply_url = format!("{}/voximplant/replies/{id}", ctx.public_url);
    let task = {
        let (ctx, call, url) = (ctx.clone(), call.clone(), reply_audio_url.clone());
        let timings = timings.clone();
        async move {
            let _turn = call.turn_lock().await;
            make(&ctx, &call, pcm, &growing, heard_tx, timings, url, started).await;
        }
    };
    tokio::spawn(task.in_current_span());
    let (user_text, language, stt) = heard_rx
        .await
        .map_err(|_| ApiError::internal("the turn ended before its words were known"))?
        .map_err(|e| ApiError::internal(format!("turn failed: {e}")))?;
    timings.stt = stt;
    timings.total = ms(started);
    Ok(Started {
        call_id: call.id().to_string(),
        user_text,
        language,
        reply_audio_url,
        reply_url,
        progressive: true,
        timings_ms: timings,
    })
}

/// Writes the reply into `growing` piece by piece, then records the turn and leaves its
/// result there.
#[allow(clippy::too_many_arguments)]
async fn make(
    ctx: &RecordingContext,
    call: &CallRecorder,
    pcm: Pcm,
    growing: &Growing,
    heard_tx: oneshot::Sender<Heard>,
    mut timings: Timings,
    reply_audio_url: String,
    started: Instant,
) {
    let t = Instant::now();
    let mut heard_tx = Some(heard_tx);
    let writer = Mutex::new(Writer::new(
        growing.format(),
        ctx.assistant.settings.sentence_pause_ms,
    ));
    // The reply is made while its audio is kept ahead of the player; what it borrows is
    // given back once it is done.
    let outcome = {
        let mut watch = |ev: &ReplyEvent| match ev {
            ReplyEvent::Heard { text, language, .. } => {
                if let Some(tx) = heard_tx.take() {
                    let _ = tx.send(Ok((text.clone(), language.clone(), ms(t))));
                }
            }
            ReplyEvent::Speech { audio, .. } => {
                lock(&writer).piece(audio, growing, Instant::now());
            }
            _ => {}
        };
        let delivery = Delivery {
            rate: ctx.reply_rate,
            live: true,
            watch: &mut watch,
        };
        let (memory, language) = (call.memory(), call.language());
        let run = recording_turn::run(
            &ctx.assistant,
            memory,
            language,
            pcm,
            delivery,
            &mut timings,
        );
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Pacer::EVERY);
        loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = tick.tick() => lock(&writer).keep_ahead(growing, Instant::now()),
            }
        }
    };
    let result = match outcome {
        Ok(outcome) => {
            timings.total = ms(started);
            let turn = finished(ctx, call, outcome, reply_audio_url, timings);
            serde_json::to_value(turn).unwrap_or_default()
        }
        Err(e) => {
            tracing::error!("progressive turn failed: {e:#}");
            if let Some(tx) = heard_tx.take() {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            serde_json::json!({"error": {"code": "turn_failed", "message": format!("{e:#}")}})
        }
    };
    let writer = writer.into_inner().unwrap_or_else(|p| p.into_inner());
    growing.complete(|bytes| writer.finish(bytes), result);
}

/// The writer, shared by the reply's pieces and the pacing tick (never held across an await).
fn lock(writer: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    writer.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes a growing reply in its format: the pieces as they are voiced, a pause between
/// them, and silence wherever the player would otherwise run dry.
struct Writer {
    format: ReplyFormat,
    pause_ms: u32,
    /// The stream's rate, from its first piece (for MP3 one that MP3 has).
    rate: Option<u32>,
    mp3: Option<Mp3Encoder>,
    pacer: Pacer,
    /// Silence written since the last piece (it counts toward the pause before the next).
    filled: Duration,
}

impl Writer {
    fn new(format: ReplyFormat, pause_ms: u32) -> Self {
        Self {
            format,
            pause_ms,
            rate: None,
            mp3: None,
            pacer: Pacer::default(),
            filled: Duration::ZERO,
        }
    }

    /// A voiced piece of the reply (after the pause that separates it from the last).
    fn piece(&mut self, audio: &Pcm, growing: &Growing, now: Instant) {
        let rate = match self.rate {
            Some(rate) => rate,
            None => self.open(audio.rate, growing),
        };
        let audio = match resample::to_rate(audio.clone(), rate) {
            Ok(audio) => audio,
            Err(e) => {
                tracing::error!("reply audio not resampled to {rate} Hz: {e:#}");
                return;
            }
        };
        if self.pacer.started() {
            let pause = Duration::from_millis(u64::from(self.pause_ms)).saturating_sub(self.filled);
            self.silence(pause, growing, now);
        }
        self.filled = Duration::ZERO;
        self.write(&audio.to_i16(), growing, now);
    }

    /// The stream starts at `voice_rate` (MP3: the nearest rate MP3 has above it).
    fn open(&mut self, voice_rate: u32, growing: &Growing) -> u32 {
        let rate = match self.format {
            ReplyFormat::Wav => voice_rate,
            ReplyFormat::Mp3 => mp3::RATES
                .into_iter()
                .find(|r| *r >= voice_rate)
                .unwrap_or(48_000),
        };
        match self.format {
            ReplyFormat::Wav => growing.append(&wav::stream_header(rate)),
            ReplyFormat::Mp3 => match Mp3Encoder::new(rate) {
                Ok(encoder) => self.mp3 = Some(encoder),
                Err(e) => tracing::error!("no MP3 encoder: {e:#}"),
            },
        }
        self.rate = Some(rate);
        rate
    }

    /// Silence while the next piece is not ready and the player would run dry.
    fn keep_ahead(&mut self, growing: &Growing, now: Instant) {
        if let Some(short) = self.pacer.short(now) {
            tracing::debug!(
                silence_ms = short.as_millis() as u64,
                "reply audio ran short: silence added"
            );
            self.filled += short;
            self.silence(short, growing, now);
        }
    }

    fn silence(&mut self, length: Duration, growing: &Growing, now: Instant) {
        let Some(rate) = self.rate else { return };
        let samples = (length.as_secs_f64() * f64::from(rate)) as usize;
        if samples > 0 {
            self.write(&vec![0; samples], growing, now);
        }
    }

    fn write(&mut self, samples: &[i16], growing: &Growing, now: Instant) {
        let Some(rate) = self.rate else { return };
        match (&mut self.mp3, self.format) {
            (Some(encoder), _) => growing.append(&encoder.encode(samples)),
            (None, ReplyFormat::Wav) => growing.append(&wav::samples_le(samples)),
            (None, ReplyFormat::Mp3) => return,
        }
        let length = Duration::from_secs_f64(samples.len() as f64 / f64::from(rate));
        self.pacer.wrote(length, now);
    }

    /// The stream's end: WAV's real sizes, MP3's last frames.
    fn finish(self, bytes: &mut Vec<u8>) {
        match self.mp3 {
            Some(encoder) => bytes.extend(encoder.finish()),
            None if self.format == ReplyFormat::Wav => wav::finish_stream(bytes),
            None => {}
        }
    }
}

/// How far a growing reply's audio is ahead of a player that started with its first bytes
/// and plays in real time; when it is less than [`Pacer::LOW`] ahead, how much silence puts
/// it [`Pacer::TARGET`] ahead.
#[derive(Debug, Default)]
struct Pacer {
    first: Option<Instant>,
    written: Duration,
}

impl Pacer {
    /// How often a growing reply is checked.
    const EVERY: Duration = Duration::from_millis(100);
    const LOW: Duration = Duration::from_millis(300);
    const TARGET: Duration = Duration::from_millis(600);

    fn started(&self) -> bool {
        self.first.is_some()
    }

    /// `length` more audio was written at `now`. A player that ran dry (written less than
    /// the time since the first bytes) plays on from now.
    fn wrote(&mut self, length: Duration, now: Instant) {
        let first = *self.first.get_or_insert(now);
        let played = now.saturating_duration_since(first);
        if played > self.written {
            self.first = Some(first + (played - self.written));
        }
        self.written += length;
    }

    /// The silence to write now, if the audio is running short.
    fn short(&self, now: Instant) -> Option<Duration> {
        let played = now.saturating_duration_since(self.first?);
        let ahead = self.written.saturating_sub(played);
        (ahead < Self::LOW).then(|| Self::TARGET - ahead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_fills_only_when_the_audio_runs_short() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut p = Pacer::default();
        assert_eq!(p.short(at(5000)), None, "nothing before the first bytes");
        p.wrote(Duration::from_secs(2), t0);
        assert_eq!(p.short(at(1000)), None, "a second ahead");
        assert_eq!(p.short(at(1800)), Some(Duration::from_millis(400)));
        // Behind already (the player has stalled): back to the target ahead of now.
        assert_eq!(p.short(at(2500)), Some(Pacer::TARGET));
        p.wrote(Duration::from_millis(600), at(2500));
        assert_eq!(p.short(at(2500)), None);
    }
}

/// How long `GET /voximplant/replies/{id}` may wait for the reply to complete.
#[derive(Debug, Deserialize)]
pub struct Wait {
    /// Seconds (default 10, at most 30; 0: answer at once).
    wait_secs: Option<f64>,
}

/// `GET /voximplant/replies/{id}`: the turn's result (`done: true` and the fields a whole
/// turn answers with), or `done: false` if it is still being made after the wait.
pub async fn show(
    State(ctx): State<Arc<RecordingContext>>,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let secs = wait.wait_secs.unwrap_or(10.0);
    if !secs.is_finite() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "wait_secs must be a number of seconds (0 to 30)",
        ));
    }
    let Some(Stored::Growing(growing)) = ctx.audio.get(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "reply_not_found",
            "no such progressive reply (expired?)",
        ));
    };
    let secs = secs.clamp(0.0, 30.0);
    let mut rx = growing.watch();
    let waited = tokio::time::timeout(
        Duration::from_secs_f64(secs),
        rx.wait_for(|s| s.result.is_some()),
    )
    .await;
    let result = match waited {
        Ok(Ok(state)) => state.result.clone(),
        _ => None,
    };
    Ok(Json(match result {
        Some(mut result) => {
            result["done"] = true.into();
            result
        }
        None => serde_json::json!({"done": false}),
    }))
}
