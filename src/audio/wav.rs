//! WAV encoding of mono PCM (16-bit, what every player and Voximplant accept).

use std::io::Cursor;

use anyhow::Result;

use super::Pcm;

/// Encodes mono PCM as a 16-bit WAV file in memory.
pub fn encode(pcm: &Pcm) -> Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut buf = Cursor::new(Vec::with_capacity(44 + pcm.samples.len() * 2));
    let mut writer = hound::WavWriter::new(&mut buf, spec)?;
    for &s in &pcm.samples {
        writer.write_sample(to_i16(s))?;
    }
    writer.finalize()?;
    Ok(buf.into_inner())
}

/// Converts one f32 sample to 16-bit PCM with clipping.
pub fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}
