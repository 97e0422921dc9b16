//! voxd: a self-hosted voice appliance. Whisper (speech → text), a local LLM (llama.cpp)
//! and Piper (text → speech) answer Voximplant calls on the company's own server.

pub mod audio;
pub mod bench;
pub mod calls;
pub mod check;
pub mod config;
pub mod download;
pub mod engines;
pub mod history;
pub mod kb;
pub mod logging;
pub mod metrics;
pub mod mic;
pub mod notify;
pub mod outbound;
pub mod prompt;
pub mod sentences;
pub mod server;
pub mod stream;
pub mod tools;
pub mod turn;
