//! Sample-rate conversion with rubato's FFT resampler: whole buffers (delay compensated),
//! and audio that arrives piece by piece (live capture).

use anyhow::{Context, Result};
use rubato::{FftFixedIn, Resampler};

use super::Pcm;

const CHUNK: usize = 1024;

/// Converts `pcm` to `rate`; returns it unchanged when the rate already matches.
pub fn to_rate(pcm: Pcm, rate: u32) -> Result<Pcm> {
    if pcm.rate == rate || pcm.samples.is_empty() {
        return Ok(Pcm {
            samples: pcm.samples,
            rate,
        });
    }
    let mut rs = FftFixedIn::<f32>::new(pcm.rate as usize, rate as usize, CHUNK, 2, 1)
        .context("cannot build resampler")?;
    let expected = (pcm.samples.len() as u64 * u64::from(rate) / u64::from(pcm.rate)) as usize;
    let delay = rs.output_delay();
    let mut out = Vec::with_capacity(expected + delay + CHUNK);
    let mut input = pcm.samples.as_slice();
    while input.len() >= rs.input_frames_next() {
        let (chunk, rest) = input.split_at(rs.input_frames_next());
        out.extend_from_slice(&rs.process(&[chunk], None)?[0]);
        input = rest;
    }
    if !input.is_empty() {
        out.extend_from_slice(&rs.process_partial(Some(&[input]), None)?[0]);
    }
    while out.len() < expected + delay {
        out.extend_from_slice(&rs.process_partial::<&[f32]>(None, None)?[0]);
    }
    out.drain(..delay);
    out.truncate(expected);
    Ok(Pcm { samples: out, rate })
}

/// Converts audio that arrives in pieces of any size (a live capture), in 10 ms steps of
/// input; the output lags the input by the resampler's delay (a few milliseconds).
pub struct Live {
    resampler: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
}

impl Live {
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let resampler = if from == to {
            None
        } else {
            let step = (from as usize / 100).max(1);
            Some(
                FftFixedIn::<f32>::new(from as usize, to as usize, step, 1, 1)
                    .with_context(|| format!("cannot convert {from} Hz to {to} Hz"))?,
            )
        };
        Ok(Self {
            resampler,
            pending: Vec::new(),
        })
    }

    /// Takes the next piece; returns the output of every whole step now available.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        let Some(rs) = self.resampler.as_mut() else {
            return Ok(samples.to_vec());
        };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let mut used = 0;
        while self.pending.len() - used >= rs.input_frames_next() {
            let n = rs.input_frames_next();
            out.extend_from_slice(&rs.process(&[&self.pending[used..used + n]], None)?[0]);
            used += n;
        }
        self.pending.drain(..used);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn keeps_length_phase_and_amplitude() {
        let pcm = Pcm {
            samples: sine(440.0, 8000, 1.0),
            rate: 8000,
        };
        let out = to_rate(pcm, 16_000).unwrap();
        assert_eq!(out.samples.len(), 16_000);
        let reference = sine(440.0, 16_000, 1.0);
        // Away from the edges the delay-compensated output matches the ideal sine.
        let err: f32 = (2000..14_000)
            .map(|i| (out.samples[i] - reference[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
    }

    #[test]
    fn same_rate_is_identity() {
        let pcm = Pcm {
            samples: vec![0.1, 0.2],
            rate: 16_000,
        };
        assert_eq!(to_rate(pcm.clone(), 16_000).unwrap(), pcm);
    }

    #[test]
    fn live_conversion_of_uneven_pieces_matches_the_signal() {
        let input = sine(440.0, 44_100, 1.0);
        let mut live = Live::new(44_100, 16_000).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(333) {
            out.extend(live.push(piece).unwrap());
        }
        // Whole 10 ms steps only: at most one step (160 samples) is still pending.
        assert!((15_840..=16_000).contains(&out.len()), "{}", out.len());
        let delay = FftFixedIn::<f32>::new(44_100, 16_000, 441, 1, 1)
            .unwrap()
            .output_delay();
        let reference = sine(440.0, 16_000, 1.0);
        let err: f32 = (2000..14_000)
            .map(|i| (out[i + delay] - reference[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
        let mut same = Live::new(16_000, 16_000).unwrap();
        assert_eq!(same.push(&reference[..100]).unwrap(), &reference[..100]);
    }
}
