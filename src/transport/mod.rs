//! The ways a call reaches voxd, one adapter each: Voximplant's recording-URL HTTP API
//! ([`voximplant_http`]), Voximplant's media stream over WebSocket ([`voximplant_ws`]) and
//! the machine's microphone ([`mic`]). Adapters turn wire formats into audio and control
//! events for the [`crate::conversation`] and back; they know nothing of models. The
//! real-time ones share one [`driver`] loop.

pub mod driver;
pub mod mic;
pub mod voximplant_http;
pub mod voximplant_ws;
