//! Voximplant's recording-URL flow over HTTP: `POST /voximplant/process_audio` (one turn on
//! a recording, [`process_audio`]), `POST /voximplant/events` (the call's lifecycle and the
//! greeting, [`events`]), `GET /voximplant/calls/{call_id}`, the reply audio the scenario
//! plays (`GET /audio/{id}.wav`, kept in the [`audio_store`]) and the result of a turn
//! answered progressively (`GET /voximplant/replies/{id}`, [`progressive`]).

pub mod audio_store;
pub mod events;
pub mod process_audio;
pub mod progressive;

use std::sync::Arc;

use audio_store::AudioStore;

use crate::calls::Calls;
use crate::config::DownloadConfig;
use crate::conversation::Assistant;
use crate::http::drain::Drain;

/// What the recording flow needs from the daemon, and nothing more.
pub struct RecordingContext {
    pub assistant: Arc<Assistant>,
    pub calls: Arc<Calls>,
    pub drain: Drain,
    pub audio: AudioStore,
    /// The base URL reply audio links point at.
    pub public_url: String,
    pub download: DownloadConfig,
    pub max_audio_secs: f64,
    /// The rate reply audio is sent at (None: the voice's own).
    pub reply_rate: Option<u32>,
    /// Said when a call connects (empty: none).
    pub greeting: String,
    /// The operator a transfer hands the caller to.
    pub operator_phone: String,
    /// Keys that act at once (`dtmf.actions`).
    pub key_actions: std::collections::BTreeMap<char, crate::config::KeyAction>,
    /// What a refusal at capacity asks the scenario to wait, in seconds.
    pub retry_after_secs: u32,
    /// What a progressive reply grows as, unless the turn asks for the other.
    pub progressive_format: crate::config::ReplyFormat,
    /// The id of the greeting's audio (one lasting file), synthesized on first use.
    pub greeting_audio: tokio::sync::OnceCell<String>,
}

impl RecordingContext {
    /// The link to the stored reply audio `id` (a WAV file).
    fn audio_url(&self, id: String) -> String {
        self.audio_url_as(id, crate::config::ReplyFormat::Wav)
    }

    /// The link to the stored reply audio `id` in `format`.
    fn audio_url_as(&self, id: String, format: crate::config::ReplyFormat) -> String {
        format!("{}/audio/{id}.{}", self.public_url, format.extension())
    }
}
