//! Audio plumbing shared by every transport: decoding recordings, resampling, WAV output.

pub mod decode;
pub mod g711;
pub mod resample;
pub mod wav;

/// The rate every engine input runs at (Whisper's).
pub const STT_RATE: u32 = 16_000;

/// Mono f32 samples in [-1, 1] at a known rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Pcm {
    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }
}
