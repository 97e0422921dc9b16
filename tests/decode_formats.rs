//! Real files from real encoders (lame MP3 8 kHz 32 kbit/s as Voximplant records, WAV,
//! Ogg Vorbis, FLAC) decode with symphonia and transcribe correctly.

mod common;

use common::{harness, wer};
use voxd::audio::decode;

#[test]
fn every_recording_format_decodes_and_transcribes() {
    let h = harness();
    let text = "I need to change the delivery address for my order.";
    let spoken = h.speak(text);
    for format in ["mp3", "wav", "ogg", "flac"] {
        let bytes = common::encode(&spoken, format);
        let pcm = decode::decode(&bytes, 60.0).unwrap_or_else(|e| panic!("{format}: {e}"));
        let expected_rate = if format == "mp3" { 8000 } else { spoken.rate };
        assert_eq!(pcm.rate, expected_rate, "{format}");
        let secs = pcm.duration_secs();
        assert!(
            (secs - spoken.duration_secs()).abs() < 0.2,
            "{format}: {secs} s vs {} s",
            spoken.duration_secs()
        );
        let heard = h.hear(pcm);
        assert!(wer(text, &heard) <= 0.35, "{format}: heard {heard:?}");
    }
}

#[test]
fn stereo_is_downmixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for _ in 0..16_000 {
        w.write_sample(16_384i16).unwrap();
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let pcm = decode::decode(&std::fs::read(&path).unwrap(), 60.0).unwrap();
    assert_eq!(pcm.samples.len(), 16_000);
    assert!((pcm.samples[10] - 0.25).abs() < 0.01, "{}", pcm.samples[10]);
}
