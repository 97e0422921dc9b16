//! WAV encoding of mono PCM (16-bit, what every player and Voximplant accept), whole or as
//! a stream whose length is not known when it starts.

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

/// Bytes of the canonical header before the samples.
pub const HEADER_BYTES: usize = 44;

/// The header of a 16-bit mono WAV stream at `rate` whose length is not known yet: both
/// sizes are 0xFFFFFFFF ("read to the end"), as streaming players expect.
pub fn stream_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_BYTES);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    h.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}

/// Writes the real sizes into a complete stream that began with [`stream_header`].
pub fn finish_stream(wav: &mut [u8]) {
    if wav.len() < HEADER_BYTES {
        return;
    }
    let data = u32::try_from(wav.len() - HEADER_BYTES).unwrap_or(u32::MAX - 36);
    wav[4..8].copy_from_slice(&(data + 36).to_le_bytes());
    wav[40..44].copy_from_slice(&data.to_le_bytes());
}

/// 16-bit samples as the little-endian bytes of a WAV data chunk.
pub fn samples_le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Converts one f32 sample to 16-bit PCM with clipping.
pub fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_stream_is_the_same_file_as_one_encoded_whole() {
        let pcm = Pcm {
            samples: (0..800).map(|i| (i as f32 / 100.0).sin() * 0.5).collect(),
            rate: 8000,
        };
        let mut stream = stream_header(8000);
        stream.extend(samples_le(&pcm.to_i16()));
        let whole = encode(&pcm).unwrap();
        assert_ne!(stream, whole, "the stream header claims no length");
        finish_stream(&mut stream);
        assert_eq!(stream, whole);
    }
}
