//! Sample-rate conversion of whole buffers (rubato's FFT resampler, delay compensated).

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
}
