//! Real-time calls over Voximplant's media stream (`GET /voximplant/stream`): the wire
//! protocol, turn detection, paced playout, streamed replies and barge-in.

pub mod caller;
pub mod playout;
pub mod protocol;
mod reply;
mod sequencer;
mod session;
pub mod turns;

pub use session::handle;
