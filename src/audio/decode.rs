//! Decoding recordings (MP3, WAV, OGG/Vorbis, FLAC) with symphonia into mono PCM.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymErr;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::Pcm;

/// Why a recording could not be decoded; the message is shown to API clients.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a supported audio file (MP3, WAV, OGG or FLAC expected): {0}")]
    Unsupported(String),
    #[error("the audio stream is corrupt: {0}")]
    Corrupt(String),
    #[error("the file contains no decodable audio (truncated before its first complete frame?)")]
    Empty,
    #[error(
        "the file is truncated: its header promises {promised} frames, only {got} are present"
    )]
    Truncated { promised: u64, got: u64 },
    #[error("the recording is {secs:.1} s long, more than the {max:.0} s allowed")]
    TooLong { secs: f64, max: f64 },
    #[error("the file claims a sample rate of {0} Hz; recordings are 4000 to 192000 Hz")]
    Rate(u32),
}

/// The sample rates a real recording can have.
const RATES: std::ops::RangeInclusive<u32> = 4_000..=192_000;

/// Decodes a whole audio file to mono f32 at its own rate. `max_secs` bounds the work a
/// hostile file can cause.
pub fn decode(bytes: &[u8], max_secs: f64) -> Result<Pcm, DecodeError> {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            mss,
            // Gapless: trim the encoder delay and padding an MP3's LAME tag declares.
            &FormatOptions {
                enable_gapless: true,
                ..Default::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| DecodeError::Unsupported(e.to_string()))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| DecodeError::Unsupported("no audio track".into()))?;
    let track_id = track.id;
    // A WAV stream's header claims the largest size there is (0xFFFFFFFF bytes, "read to
    // the end"): it promises nothing.
    let streamed = |frames: &u64| {
        let block = u64::from(track.codec_params.bits_per_sample.unwrap_or(16) / 8)
            * track.codec_params.channels.map_or(1, |c| c.count() as u64);
        *frames >= u64::from(u32::MAX) / block.max(1)
    };
    let promised = track.codec_params.n_frames.filter(|f| !streamed(f));
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| DecodeError::Unsupported(e.to_string()))?;

    let mut samples = Vec::new();
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    // A header's absurd rate (1 Hz, 4 GHz) would make any length pass for short or long.
    if rate != 0 && !RATES.contains(&rate) {
        return Err(DecodeError::Rate(rate));
    }
    let mut frames: u64 = 0;
    let mut good_packets = 0usize;
    let mut bad_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymErr::ResetRequired) => break,
            Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymErr::DecodeError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
        };
        good_packets += 1;
        let spec = *decoded.spec();
        rate = spec.rate;
        if !RATES.contains(&rate) {
            return Err(DecodeError::Rate(rate));
        }
        let channels = spec.channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        let inter = buf.samples();
        frames += (inter.len() / channels) as u64;
        samples.extend(
            inter
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
        let secs = samples.len() as f64 / f64::from(rate.max(1));
        if secs > max_secs {
            return Err(DecodeError::TooLong {
                secs,
                max: max_secs,
            });
        }
    }
    if good_packets == 0 || samples.is_empty() || rate == 0 {
        return Err(if bad_packets > 0 {
            DecodeError::Corrupt(format!("{bad_packets} packets failed to decode"))
        } else {
            DecodeError::Empty
        });
    }
    if bad_packets > good_packets {
        return Err(DecodeError::Corrupt(format!(
            "{bad_packets} of {} packets failed to decode",
            bad_packets + good_packets
        )));
    }
    if let Some(promised) = promised {
        if frames * 10 < promised * 9 {
            return Err(DecodeError::Truncated {
                promised,
                got: frames,
            });
        }
    }
    Ok(Pcm { samples, rate })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav;

    #[test]
    fn garbage_is_unsupported() {
        let err = decode(b"<html>not audio</html>", 60.0).unwrap_err();
        assert!(matches!(err, DecodeError::Unsupported(_)), "{err}");
    }

    #[test]
    fn wav_roundtrip_and_truncation() {
        let pcm = Pcm {
            samples: vec![0.25; 16_000],
            rate: 16_000,
        };
        let bytes = crate::audio::wav::encode(&pcm).unwrap();
        let back = decode(&bytes, 60.0).unwrap();
        assert_eq!(back.rate, 16_000);
        assert_eq!(back.samples.len(), 16_000);
        assert!((back.samples[100] - 0.25).abs() < 1e-3);
        let err = decode(&bytes[..bytes.len() / 2], 60.0).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
        // A stream's header promises no length: all that came is the audio.
        let mut stream = wav::stream_header(16_000);
        stream.extend_from_slice(&bytes[wav::HEADER_BYTES..bytes.len() / 2]);
        let present = (bytes.len() / 2 - wav::HEADER_BYTES) / 2;
        assert_eq!(decode(&stream, 60.0).unwrap().samples.len(), present);
        // A header that claims an absurd rate is refused, whatever the samples.
        for absurd in [1u32, 4_000_000_000] {
            let mut claimed = bytes.clone();
            claimed[24..28].copy_from_slice(&absurd.to_le_bytes());
            let err = decode(&claimed, 60.0).unwrap_err();
            assert!(matches!(err, DecodeError::Rate(r) if r == absurd), "{err}");
        }
        let err = decode(&bytes, 0.5).unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }), "{err}");
    }
}
