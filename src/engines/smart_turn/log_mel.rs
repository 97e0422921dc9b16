//! The log-mel features Smart Turn v3 reads: Whisper's 80-bin recipe over an 8 s window at
//! 16 kHz (n_fft 400, hop 160, Slaney mel scale and area normalisation, log10, clamped 8
//! below the peak, scaled to about [-1, 1]), after normalising the waveform to zero mean
//! and unit variance, as Pipecat's reference extractor does.

use std::sync::{Arc, OnceLock};

use realfft::{RealFftPlanner, RealToComplex};

/// Samples in the window (8 s at 16 kHz).
pub const WINDOW: usize = 8 * 16_000;
pub const MELS: usize = 80;
/// Frames the model reads (the centred STFT's last frame is dropped).
pub const FRAMES: usize = 800;
const N_FFT: usize = 400;
const HOP: usize = 160;
const BINS: usize = N_FFT / 2 + 1;

/// The features of the last 8 s of `audio` (16 kHz, in [-1, 1]; shorter audio is padded
/// with silence before it): `MELS` rows of `FRAMES`, row-major.
pub fn features(audio: &[f32]) -> Vec<f32> {
    let tables = Tables::get();
    let mut x = vec![0f32; WINDOW];
    let tail = &audio[audio.len().saturating_sub(WINDOW)..];
    x[WINDOW - tail.len()..].copy_from_slice(tail);
    normalise(&mut x);

    let padded = reflect_pad(&x, N_FFT / 2);
    let mut frame = tables.fft.make_input_vec();
    let mut spectrum = tables.fft.make_output_vec();
    let mut scratch = tables.fft.make_scratch_vec();
    let mut out = vec![0f32; MELS * FRAMES];
    let mut power = [0f64; BINS];
    let mut peak = f64::MIN;
    for t in 0..FRAMES {
        let start = t * HOP;
        for (i, v) in frame.iter_mut().enumerate() {
            *v = padded[start + i] * tables.hann[i];
        }
        tables
            .fft
            .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
            .expect("buffers made by the same plan");
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, filter) in tables.mel.iter().enumerate() {
            let energy: f64 = filter.iter().map(|&(k, w)| w * power[k]).sum();
            let log = energy.max(1e-10).log10();
            peak = peak.max(log);
            out[m * FRAMES + t] = log as f32;
        }
    }
    let floor = (peak - 8.0) as f32;
    for v in &mut out {
        *v = (v.max(floor) + 4.0) / 4.0;
    }
    out
}

/// Zero mean, unit variance (population variance, in f32 as the reference does).
fn normalise(x: &mut [f32]) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    for v in x.iter_mut() {
        *v = ((f64::from(*v) - mean) * scale) as f32;
    }
}

/// `pad` samples mirrored on each side, the edge sample not repeated (numpy's "reflect").
fn reflect_pad(x: &[f32], pad: usize) -> Vec<f64> {
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    out.extend((1..=pad).rev().map(|i| f64::from(x[i])));
    out.extend(x.iter().map(|&v| f64::from(v)));
    out.extend((0..pad).map(|i| f64::from(x[n - 2 - i])));
    out
}

/// The FFT plan, the window and the filterbank, made once.
struct Tables {
    fft: Arc<dyn RealToComplex<f64>>,
    hann: Vec<f64>,
    /// Per mel band, its non-zero (bin, weight) pairs.
    mel: Vec<Vec<(usize, f64)>>,
}

impl Tables {
    fn get() -> &'static Tables {
        static TABLES: OnceLock<Tables> = OnceLock::new();
        TABLES.get_or_init(|| Tables {
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
            hann: (0..N_FFT)
                .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
                .collect(),
            mel: filterbank(),
        })
    }
}

fn hz_to_mel(f: f64) -> f64 {
    if f < 1000.0 {
        3.0 * f / 200.0
    } else {
        15.0 + (f / 1000.0).ln() * 27.0 / 6.4f64.ln()
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m < 15.0 {
        200.0 * m / 3.0
    } else {
        1000.0 * (6.4f64.ln() / 27.0 * (m - 15.0)).exp()
    }
}

/// Slaney-normalised triangular filters from 0 to 8 kHz over the FFT's bins.
fn filterbank() -> Vec<Vec<(usize, f64)>> {
    let top = hz_to_mel(8000.0);
    let edges: Vec<f64> = (0..MELS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (MELS + 1) as f64))
        .collect();
    (0..MELS)
        .map(|m| {
            let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            let area = 2.0 / (hi - lo);
            (0..BINS)
                .filter_map(|k| {
                    let f = 8000.0 * k as f64 / (BINS - 1) as f64;
                    let w = ((f - lo) / (mid - lo)).min((hi - f) / (hi - mid));
                    (w > 0.0).then_some((k, w * area))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1.5 s rising chirp with a 220 Hz hum, 2.5 s of silence after it.
    fn chirp() -> Vec<f32> {
        let mut audio: Vec<f32> = (0..24_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                0.3 * (2.0 * std::f32::consts::PI * (300.0 * t + 400.0 * t * t)).sin()
                    + 0.1 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
            })
            .collect();
        audio.resize(64_000, 0.0);
        audio
    }

    #[test]
    fn features_match_pipecats_reference_extractor() {
        let f = features(&chirp());
        assert_eq!(f.len(), MELS * FRAMES);
        // Values printed by pipecat 1.14.0's compute_whisper_log_mel_features (numpy) for the
        // same signal, left-padded to 8 s as its analyzer does.
        for &(mel, frame, want) in REFERENCE {
            let got = f[mel * FRAMES + frame];
            assert!(
                (got - want).abs() < 1e-3,
                "mel {mel} frame {frame}: {got}, reference {want}"
            );
        }
    }

    #[test]
    fn longer_audio_keeps_its_last_eight_seconds() {
        let mut long = vec![0.2f32; 16_000];
        long.extend(chirp());
        long.extend(vec![0f32; WINDOW - 64_000]);
        let mut exact = chirp();
        exact.extend(vec![0f32; WINDOW - 64_000]);
        assert_eq!(features(&long), features(&exact));
    }

    const REFERENCE: &[(usize, usize, f32)] = &[
        (0, 0, -0.152979),
        (79, 799, -0.152979),
        (3, 400, 1.51624),
        (10, 420, 1.65044),
        (20, 430, 0.453463),
        (25, 480, 1.7905),
        (5, 510, 1.57029),
        (1, 399, 0.841468),
        (1, 402, 0.566449),
        (1, 548, 0.548411),
        (4, 399, 0.827365),
        (4, 402, 1.53197),
        (8, 399, 0.787178),
        (8, 402, 1.80491),
        (8, 430, 0.700535),
        (8, 510, 0.757248),
        (12, 399, 0.715415),
        (12, 430, 1.53384),
        (12, 470, -0.0310516),
        (12, 548, 0.157626),
    ];
}
