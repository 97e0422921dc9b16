//! The command-line verbs that are more than a call into one module: `voxd chat`, `voxd
//! check` and `voxd kb`. (`voxd serve`, `mic` and `bench` live with their subsystems.)

pub mod chat;
pub mod check;
pub mod kb;
