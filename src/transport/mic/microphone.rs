//! The microphone: a cpal input stream in whatever format and channel count the device
//! offers, mixed down to mono f32 in the audio callback and handed to the conversation loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{Device, FromSample, Sample, SizedSample, Stream, StreamConfig};
use tokio::sync::mpsc::UnboundedSender;

use super::devices::{explain, Chosen, Direction};
use super::Faults;

/// An open input stream (paused until [`Microphone::play`]).
pub struct Microphone {
    stream: Stream,
    pub name: String,
    pub rate: u32,
    /// How often the device has delivered audio.
    progress: Arc<AtomicU64>,
}

impl Microphone {
    /// Opens the device; each captured piece goes to `pieces` as mono samples at `rate`.
    pub fn open(chosen: Chosen, pieces: UnboundedSender<Vec<f32>>, faults: Faults) -> Result<Self> {
        let config = chosen.config.config();
        let progress = Arc::new(AtomicU64::new(0));
        let stream = super::with_sample_type!(
            chosen.config.sample_format(),
            build,
            &chosen.device,
            config,
            pieces,
            progress.clone(),
            faults
        )
        .map_err(|e| explain(&e, Direction::Input, &chosen.name))?;
        Ok(Self {
            stream,
            name: chosen.name,
            rate: config.sample_rate,
            progress,
        })
    }

    /// How often the device has delivered audio so far.
    pub fn progress(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    pub fn play(&self) -> Result<()> {
        self.stream
            .play()
            .map_err(|e| explain(&e, Direction::Input, &self.name))
    }
}

fn build<T>(
    device: &Device,
    config: StreamConfig,
    pieces: UnboundedSender<Vec<f32>>,
    progress: Arc<AtomicU64>,
    faults: Faults,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels);
    device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            let _ = pieces.send(to_mono(data, channels));
            progress.fetch_add(1, Ordering::Relaxed);
        },
        move |e| {
            let _ = faults.send((Direction::Input, e));
        },
        None,
    )
}

/// Averages each frame of `channels` interleaved samples into one f32 sample.
fn to_mono<T>(data: &[T], channels: usize) -> Vec<f32>
where
    T: Sample,
    f32: FromSample<T>,
{
    let channels = channels.max(1);
    data.chunks_exact(channels)
        .map(|frame| frame.iter().map(|&s| f32::from_sample(s)).sum::<f32>() / channels as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_any_format_down_to_mono() {
        assert_eq!(to_mono(&[0.5f32, -0.5, 1.0, 0.0], 2), vec![0.0, 0.5]);
        assert_eq!(to_mono(&[16_384i16, -32_768], 1), vec![0.5, -1.0]);
        // Unsigned samples are centred on half their range.
        assert_eq!(
            to_mono(&[32_768u16, 49_152, 32_768, 16_384], 2),
            vec![0.25, -0.25]
        );
        assert_eq!(to_mono(&[0.25f64; 6], 3), vec![0.25, 0.25]);
    }
}
