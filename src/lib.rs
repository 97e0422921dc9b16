//! voxd: a self-hosted voice appliance. Whisper (speech → text), a local LLM (llama.cpp)
//! and Piper (text → speech) answer Voximplant calls on the company's own server.
//!
//! The folders follow a call: [`transport`] (how it reaches voxd) → [`conversation`] (turns,
//! the reply pipeline, playout) → [`engines`] (Whisper, llama, Piper) → [`calls`] (the
//! registry, the recorder, the history). [`server`] serves the HTTP side, [`config`] reads
//! the settings.

pub mod audio;
pub mod bench;
pub mod calls;
pub mod commands;
pub mod config;
pub mod console;
pub mod conversation;
pub mod download;
pub mod engines;
pub mod http;
pub mod kb;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod sentences;
pub mod server;
pub mod transport;
