//! The speaker: a cpal output stream in whatever format and channel count the device
//! offers, fed from a queue of voxd's mono speech (silence when the queue runs dry).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{Device, FromSample, Sample, SizedSample, Stream, StreamConfig};

use super::devices::{explain, Chosen, Direction};
use super::Faults;

type Queue = Arc<Mutex<VecDeque<f32>>>;

/// An open output stream (paused until [`Speaker::play`]).
pub struct Speaker {
    stream: Stream,
    pub name: String,
    queue: Queue,
    /// How often the device has asked for audio.
    progress: Arc<AtomicU64>,
    pub rate: u32,
}

impl Speaker {
    pub fn open(chosen: Chosen, faults: Faults) -> Result<Self> {
        let config = chosen.config.config();
        let queue = Queue::default();
        let progress = Arc::new(AtomicU64::new(0));
        let stream = super::with_sample_type!(
            chosen.config.sample_format(),
            build,
            &chosen.device,
            config,
            queue.clone(),
            progress.clone(),
            faults
        )
        .map_err(|e| explain(&e, Direction::Output, &chosen.name))?;
        Ok(Self {
            stream,
            name: chosen.name,
            queue,
            progress,
            rate: config.sample_rate,
        })
    }

    pub fn play(&self) -> Result<()> {
        self.stream
            .play()
            .map_err(|e| explain(&e, Direction::Output, &self.name))
    }

    /// Queues speech at the speaker's rate.
    pub fn push(&self, samples: &[i16]) {
        lock(&self.queue).extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
    }

    /// Drops what is queued and not yet played (barge-in).
    pub fn clear(&self) {
        lock(&self.queue).clear();
    }

    /// How often the device has asked for audio so far.
    pub fn progress(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// Whether everything queued has gone to the device.
    pub fn drained(&self) -> bool {
        lock(&self.queue).is_empty()
    }
}

fn lock(queue: &Queue) -> MutexGuard<'_, VecDeque<f32>> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

fn build<T>(
    device: &Device,
    config: StreamConfig,
    queue: Queue,
    progress: Arc<AtomicU64>,
    faults: Faults,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels);
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            fill(data, channels, &mut lock(&queue));
            progress.fetch_add(1, Ordering::Relaxed);
        },
        move |e| {
            let _ = faults.send((Direction::Output, e));
        },
        None,
    )
}

/// Writes one queued sample to every channel of each frame; silence once the queue is empty.
fn fill<T>(data: &mut [T], channels: usize, queue: &mut VecDeque<f32>)
where
    T: Sample + FromSample<f32>,
{
    for frame in data.chunks_mut(channels.max(1)) {
        let s = T::from_sample(queue.pop_front().unwrap_or(0.0));
        frame.fill(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_mono_over_the_channels_then_silence() {
        let mut queue = VecDeque::from([0.5, -1.0]);
        let mut out = [7i16; 6];
        fill(&mut out, 2, &mut queue);
        assert_eq!(out, [16_384, 16_384, -32_768, -32_768, 0, 0]);
        assert!(queue.is_empty());
        let mut queue = VecDeque::from([1.0]);
        let mut out = [0u16; 2];
        fill(&mut out, 1, &mut queue);
        assert_eq!(out, [65_535, 32_768]);
    }
}
