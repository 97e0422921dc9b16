//! voxd's operational metrics (`GET /metrics`, Prometheus text format): calls by transport
//! and outcome, per-stage latencies, barge-ins, errors by kind, model load times, and the
//! engines' queues, and the daemon's resident memory.

pub mod percentile;
pub mod process;
pub mod registry;

use serde::Serialize;

use crate::engines::schedule::EngineLoad;
use registry::{Counter, Family, Gauge, Histogram};

/// Bucket bounds of the latency histograms, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
];

/// How a call reaches voxd: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST /voximplant/process_audio` turns on recordings.
    Recording,
    /// The real-time media stream over WebSocket.
    Stream,
    /// `voxd mic`: the machine's microphone and speaker.
    Mic,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Recording => "recording",
            Transport::Stream => "stream",
            Transport::Mic => "mic",
        }
    }
}

/// Stage durations of a turn in milliseconds (0: the stage did not run). The pipeline
/// fills `stt` to `tts`; the recording flow adds `download`, `decode` and `total`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    pub download: f64,
    pub decode: f64,
    pub stt: f64,
    pub llm: f64,
    pub llm_first_token: f64,
    /// Synthesis of the reply's first piece, from when its text was complete.
    pub tts_first_audio: f64,
    /// Synthesis still running once the LLM's text was complete.
    pub tts: f64,
    pub total: f64,
}

/// A stage of answering a turn: the `stage` label of `voxd_stage_seconds`.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Download,
    Decode,
    Stt,
    LlmFirstToken,
    Llm,
    TtsFirstAudio,
    /// Recording turn: request received → response ready.
    TurnTotal,
    /// Media stream: the caller stopped speaking → voxd's first reply frame sent.
    EndOfTurnToFirstAudio,
    /// Real time: silence inside a reply while its next piece was not ready (a gap).
    ReplyGap,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::Decode => "decode",
            Stage::Stt => "stt",
            Stage::LlmFirstToken => "llm_first_token",
            Stage::Llm => "llm_total",
            Stage::TtsFirstAudio => "tts_first_audio",
            Stage::TurnTotal => "turn_total",
            Stage::EndOfTurnToFirstAudio => "end_of_turn_to_first_audio",
            Stage::ReplyGap => "reply_gap",
        }
    }
}

/// Every metric voxd keeps; shared by the server, the calls table and the stream sessions.
pub struct Metrics {
    calls_active: Family<Gauge>,
    calls: Family<Counter>,
    turns: Family<Counter>,
    stages: Family<Histogram>,
    barge_ins: Family<Counter>,
    speculations: Family<Counter>,
    turn_verdicts: Family<Counter>,
    ignored_interruptions: Family<Counter>,
    tool_calls: Family<Counter>,
    errors: Family<Counter>,
    model_load: Family<Gauge>,
    draining: Family<Gauge>,
    capacity: Family<Gauge>,
    refused: Family<Counter>,
    engine_queued: Family<Gauge>,
    engine_running: Family<Gauge>,
    engine_places: Family<Gauge>,
    resident: Family<Gauge>,
    resident_peak: Family<Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Self {
            calls_active: Family::new("voxd_calls_active", "Calls in progress.", &["transport"]),
            calls: Family::new(
                "voxd_calls_total",
                "Calls ended, by how they ended.",
                &["transport", "outcome"],
            ),
            turns: Family::new("voxd_turns_total", "Caller turns answered.", &["transport"]),
            stages: Family::with_buckets(
                "voxd_stage_seconds",
                "Time each stage of answering a turn took.",
                &["transport", "stage"],
                LATENCY_BUCKETS,
            ),
            barge_ins: Family::new(
                "voxd_barge_ins_total",
                "Replies cut short because the caller spoke over voxd.",
                &[],
            ),
            speculations: Family::new(
                "voxd_speculative_replies_total",
                "Replies begun in the caller's pause: used (the turn had ended), dropped (the \
                 caller went on), skipped (the engines had no room).",
                &["outcome"],
            ),
            turn_verdicts: Family::new(
                "voxd_end_of_turn_verdicts_total",
                "What the end-of-turn model heard in the caller's pauses: finished, \
                 unfinished, or failed (silence and words decided).",
                &["verdict"],
            ),
            ignored_interruptions: Family::new(
                "voxd_interruptions_ignored_total",
                "Speech over voxd that did not end its reply: a backchannel it talked on over, \
                 or an interruption with no words after which it resumed.",
                &["kind"],
            ),
            tool_calls: Family::new(
                "voxd_tool_calls_total",
                "Tools the assistant called: hangup, transfer, save_lead.",
                &["tool"],
            ),
            errors: Family::new(
                "voxd_errors_total",
                "Errors by kind: API error codes and abnormal media-stream ends.",
                &["kind"],
            ),
            model_load: Family::new(
                "voxd_model_load_seconds",
                "Time each engine took to load at startup.",
                &["engine"],
            ),
            draining: Family::new(
                "voxd_draining",
                "1 while voxd is shutting down and refuses new calls.",
                &[],
            ),
            capacity: Family::new(
                "voxd_calls_capacity",
                "Most calls served at once (calls.max_live).",
                &[],
            ),
            refused: Family::new(
                "voxd_calls_refused_total",
                "New calls refused because voxd was at capacity.",
                &["transport"],
            ),
            engine_queued: Family::new(
                "voxd_engine_queued",
                "Jobs waiting for an engine (LLM: replies waiting for a sequence).",
                &["engine"],
            ),
            engine_running: Family::new(
                "voxd_engine_running",
                "Jobs an engine is running (LLM: replies being written).",
                &["engine"],
            ),
            engine_places: Family::new(
                "voxd_engine_places",
                "Jobs an engine runs at once (its CPU budget; LLM: sequences).",
                &["engine"],
            ),
            resident: Family::new(
                "process_resident_memory_bytes",
                "Resident memory of the voxd process.",
                &[],
            ),
            resident_peak: Family::new(
                "voxd_resident_memory_peak_bytes",
                "Most resident memory the voxd process has held since it started.",
                &[],
            ),
        };
        for t in [Transport::Recording, Transport::Stream] {
            m.calls_active.declare(&[t.as_str()]);
            m.turns.declare(&[t.as_str()]);
            m.refused.declare(&[t.as_str()]);
        }
        m.barge_ins.declare(&[]);
        for outcome in ["used", "dropped", "skipped"] {
            m.speculations.declare(&[outcome]);
        }
        for verdict in ["finished", "unfinished", "failed"] {
            m.turn_verdicts.declare(&[verdict]);
        }
        for kind in ["backchannel", "resumed"] {
            m.ignored_interruptions.declare(&[kind]);
        }
        // Zero gaps is a figure too (`voxd bench load` reads it).
        m.stages
            .declare(&[Transport::Stream.as_str(), Stage::ReplyGap.as_str()]);
        m
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A call ended (`outcome`: disconnected, failed, expired, caller_hangup, …).
    pub fn call_ended(&self, transport: Transport, outcome: &str) {
        self.calls.inc(&[transport.as_str(), outcome]);
    }

    pub fn turn_answered(&self, transport: Transport) {
        self.turns.inc(&[transport.as_str()]);
    }

    /// Records how long a stage took, in milliseconds.
    pub fn stage_ms(&self, transport: Transport, stage: Stage, ms: f64) {
        self.stages
            .observe(&[transport.as_str(), stage.as_str()], ms / 1000.0);
    }

    pub fn barge_in(&self) {
        self.barge_ins.inc(&[]);
    }

    pub fn speculation(&self, outcome: &str) {
        self.speculations.inc(&[outcome]);
    }

    /// Speech over voxd did not end its reply (`kind`: backchannel, resumed).
    pub fn interruption_ignored(&self, kind: &str) {
        self.ignored_interruptions.inc(&[kind]);
    }

    /// The end-of-turn model heard a pause (`verdict`: finished, unfinished, failed).
    pub fn turn_verdict(&self, verdict: &str) {
        self.turn_verdicts.inc(&[verdict]);
    }

    pub fn tool_called(&self, tool: &str) {
        self.tool_calls.inc(&[tool]);
    }

    pub fn error(&self, kind: &str) {
        self.errors.inc(&[kind]);
    }

    /// A new call was refused: voxd was at capacity.
    pub fn call_refused(&self, transport: Transport) {
        self.refused.inc(&[transport.as_str()]);
    }

    pub fn model_loaded(&self, engine: &str, secs: f64) {
        self.model_load.set(&[engine], secs);
    }

    /// The text exposition, with the live values that are read at scrape time.
    pub fn render(
        &self,
        active: &[(Transport, usize)],
        capacity: usize,
        draining: bool,
        engines: &EngineLoad,
    ) -> String {
        for (t, n) in active {
            self.calls_active.set(&[t.as_str()], *n as f64);
        }
        for (engine, lane) in engines.by_engine() {
            self.engine_queued.set(&[engine], lane.queued as f64);
            self.engine_running.set(&[engine], lane.running as f64);
            self.engine_places.set(&[engine], lane.places as f64);
        }
        self.capacity.set(&[], capacity as f64);
        self.draining.set(&[], f64::from(u8::from(draining)));
        if let Some((now, peak)) = process::resident_bytes() {
            self.resident.set(&[], now as f64);
            self.resident_peak.set(&[], peak as f64);
        }
        let mut out = String::new();
        self.calls_active.encode(&mut out);
        self.capacity.encode(&mut out);
        self.refused.encode(&mut out);
        self.calls.encode(&mut out);
        self.turns.encode(&mut out);
        self.stages.encode(&mut out);
        self.barge_ins.encode(&mut out);
        self.speculations.encode(&mut out);
        self.turn_verdicts.encode(&mut out);
        self.ignored_interruptions.encode(&mut out);
        self.tool_calls.encode(&mut out);
        self.errors.encode(&mut out);
        self.model_load.encode(&mut out);
        self.draining.encode(&mut out);
        self.engine_queued.encode(&mut out);
        self.engine_running.encode(&mut out);
        self.engine_places.encode(&mut out);
        self.resident.encode(&mut out);
        self.resident_peak.encode(&mut out);
        out
    }
}
