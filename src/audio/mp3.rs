//! MP3 for replies that grow while they are made (Voximplant's `progressivePlayback` is
//! documented for MP3): mono CBR at the reply's own rate, encoded piece by piece by the
//! system's LAME (`libmp3lame`, linked dynamically: the LGPL library stays the system's),
//! each piece flushed at once so the player has it.

use std::ffi::{c_int, c_short, c_uchar, c_void};

use anyhow::{bail, Result};

#[link(name = "mp3lame")]
extern "C" {
    fn lame_init() -> *mut c_void;
    fn lame_set_in_samplerate(gfp: *mut c_void, rate: c_int) -> c_int;
    fn lame_set_out_samplerate(gfp: *mut c_void, rate: c_int) -> c_int;
    fn lame_set_num_channels(gfp: *mut c_void, channels: c_int) -> c_int;
    fn lame_set_mode(gfp: *mut c_void, mode: c_int) -> c_int;
    fn lame_set_brate(gfp: *mut c_void, kbps: c_int) -> c_int;
    fn lame_set_quality(gfp: *mut c_void, quality: c_int) -> c_int;
    fn lame_set_bWriteVbrTag(gfp: *mut c_void, write: c_int) -> c_int;
    fn lame_set_disable_reservoir(gfp: *mut c_void, disable: c_int) -> c_int;
    fn lame_set_write_id3tag_automatic(gfp: *mut c_void, write: c_int);
    fn lame_init_params(gfp: *mut c_void) -> c_int;
    fn lame_encode_buffer(
        gfp: *mut c_void,
        left: *const c_short,
        right: *const c_short,
        samples: c_int,
        out: *mut c_uchar,
        out_size: c_int,
    ) -> c_int;
    fn lame_encode_flush_nogap(gfp: *mut c_void, out: *mut c_uchar, out_size: c_int) -> c_int;
    fn lame_encode_flush(gfp: *mut c_void, out: *mut c_uchar, out_size: c_int) -> c_int;
    fn lame_close(gfp: *mut c_void) -> c_int;
}

/// `MPEG_mode`'s MONO.
const MONO: c_int = 3;
/// Most samples handed to LAME at once (its output buffer is sized for them).
const BLOCK: usize = 8192;

/// The rates MP3 has (MPEG-1, 2 and 2.5).
pub const RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// One growing MP3 stream.
pub struct Mp3Encoder {
    gfp: *mut c_void,
    rate: u32,
}

// The LAME context is used by one owner at a time (it is moved, never shared).
unsafe impl Send for Mp3Encoder {}

impl Mp3Encoder {
    /// A mono CBR encoder at `rate` (one of [`RATES`]): 32 kbit/s up to 16 kHz (telephone
    /// speech), 48 kbit/s above; no VBR or ID3 tag (the length is not known in advance), no
    /// bit reservoir (each frame stands alone, so a piece is complete when it is flushed).
    pub fn new(rate: u32) -> Result<Self> {
        if !RATES.contains(&rate) {
            bail!("MP3 has no {rate} Hz (it has {RATES:?})");
        }
        // SAFETY: a fresh context, configured before lame_init_params and closed on drop.
        unsafe {
            let gfp = lame_init();
            if gfp.is_null() {
                bail!("LAME could not start an encoder");
            }
            let encoder = Self { gfp, rate };
            let kbps = if rate <= 16_000 { 32 } else { 48 };
            let rate = rate as c_int;
            let ok = lame_set_in_samplerate(gfp, rate) == 0
                && lame_set_out_samplerate(gfp, rate) == 0
                && lame_set_num_channels(gfp, 1) == 0
                && lame_set_mode(gfp, MONO) == 0
                && lame_set_brate(gfp, kbps) == 0
                && lame_set_quality(gfp, 5) == 0
                && lame_set_bWriteVbrTag(gfp, 0) == 0
                && lame_set_disable_reservoir(gfp, 1) == 0;
            lame_set_write_id3tag_automatic(gfp, 0);
            if !ok || lame_init_params(gfp) < 0 {
                bail!("LAME refused mono {rate} Hz at {kbps} kbit/s");
            }
            Ok(encoder)
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Encodes `samples` (at the encoder's rate) and flushes them: the frames returned hold
    /// all of them (the last one padded), and the stream goes on after them.
    pub fn encode(&mut self, samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for block in samples.chunks(BLOCK) {
            let mut buf = vec![0u8; BLOCK * 5 / 4 + 7200];
            // SAFETY: `block` holds block.len() samples; `buf` is the size LAME documents
            // as enough for them (1.25 × samples + 7200 bytes).
            let n = unsafe {
                lame_encode_buffer(
                    self.gfp,
                    block.as_ptr(),
                    block.as_ptr(),
                    block.len() as c_int,
                    buf.as_mut_ptr(),
                    buf.len() as c_int,
                )
            };
            out.extend_from_slice(&buf[..n.max(0) as usize]);
        }
        out.extend(self.flush(lame_encode_flush_nogap));
        out
    }

    /// The stream's last frames.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush(lame_encode_flush)
    }

    fn flush(
        &mut self,
        how: unsafe extern "C" fn(*mut c_void, *mut c_uchar, c_int) -> c_int,
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 7200];
        // SAFETY: 7200 bytes is what LAME documents a flush may need.
        let n = unsafe { how(self.gfp, buf.as_mut_ptr(), buf.len() as c_int) };
        buf.truncate(n.max(0) as usize);
        buf
    }
}

impl Drop for Mp3Encoder {
    fn drop(&mut self) {
        // SAFETY: the context came from lame_init and is closed once.
        unsafe {
            lame_close(self.gfp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::decode;

    fn tone(rate: u32, secs: f32) -> Vec<i16> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| {
                ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn pieces_encoded_one_by_one_decode_as_one_stream() {
        for rate in [8000, 16000, 22050] {
            let mut enc = Mp3Encoder::new(rate).unwrap();
            let mut bytes = enc.encode(&tone(rate, 0.7));
            let first = bytes.len();
            assert!(first > 0, "a flushed piece is there at once");
            bytes.extend(enc.encode(&vec![0; rate as usize / 2]));
            bytes.extend(enc.encode(&tone(rate, 0.8)));
            bytes.extend(enc.finish());
            let pcm = decode::decode(&bytes, 60.0).unwrap();
            assert_eq!(pcm.rate, rate);
            let secs = pcm.duration_secs();
            // Each flush pads its last frame; the decoder adds LAME's delay.
            assert!((2.0..2.4).contains(&secs), "{rate} Hz: {secs} s");
        }
        assert!(Mp3Encoder::new(44_000).is_err());
    }
}
