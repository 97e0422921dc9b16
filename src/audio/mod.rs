//! Audio plumbing shared by every transport: decoding recordings, resampling, WAV and MP3
//! output.

pub mod decode;
mod encoding;
pub mod g711;
pub mod mp3;
pub mod resample;
pub mod wav;

pub use encoding::Encoding;

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

    /// Audio from 16-bit samples (the wire's and the devices' form).
    pub fn from_i16(samples: &[i16], rate: u32) -> Self {
        Self {
            samples: samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
            rate,
        }
    }

    /// The samples as 16-bit PCM, clipped.
    pub fn to_i16(&self) -> Vec<i16> {
        self.samples.iter().map(|&s| wav::to_i16(s)).collect()
    }
}

/// Samples in `pause_ms` of silence at `rate`.
pub fn pause_samples(rate: u32, pause_ms: u32) -> usize {
    (rate as usize * pause_ms as usize) / 1000
}

/// Concatenates pieces of speech (all at one rate) with `pause_ms` of silence between them.
pub fn join(parts: Vec<Pcm>, pause_ms: u32) -> Pcm {
    let rate = parts.first().map_or(STT_RATE, |p| p.rate);
    let gap = pause_samples(rate, pause_ms);
    let mut samples = Vec::with_capacity(parts.iter().map(|p| p.samples.len() + gap).sum());
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            samples.resize(samples.len() + gap, 0.0);
        }
        samples.extend_from_slice(&part.samples);
    }
    Pcm { samples, rate }
}
