//! Real-time conversation: the transport-independent engine (turn detection, streamed
//! replies, paced playout, barge-in) and Voximplant's media stream (`GET
//! /voximplant/stream`) that carries it for calls; `voxd mic` drives the same engine.

pub mod caller;
pub mod conversation;
pub mod playout;
pub mod protocol;
mod reply;
mod sequencer;
mod session;
pub mod turns;

pub use session::handle;
