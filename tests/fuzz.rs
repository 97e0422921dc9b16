//! Fuzzing the parsers that strangers feed, in the test command (bounded iterations, fixed
//! seeds, so a failure reproduces): the media-stream message parser and frame numbering,
//! the audio decoders (WAV, MP3, OGG/Vorbis, FLAC), the events endpoint's body over real
//! HTTP, and the config loader. Inputs are valid examples mutated (bytes flipped, inserted,
//! deleted, spliced, truncated); nothing may panic, every answer must be a clean error, and
//! voxd must keep serving. `VOXD_FUZZ_ITERATIONS` runs longer campaigns (see BENCHMARKS.md).

mod common;

use std::time::{Duration, Instant};

use common::{client, harness};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use voxd::transport::voximplant_ws::protocol;

/// Iterations of each campaign (`VOXD_FUZZ_ITERATIONS` to run more).
fn iterations(default: usize) -> usize {
    std::env::var("VOXD_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `seed` with a few random mutations.
fn mutate(rng: &mut StdRng, seed: &[u8], splice: &[&[u8]]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..=data.len());
        match rng.gen_range(0..6) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let n = rng.gen_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                data.splice(at..at, bytes);
            }
            2 if !data.is_empty() => {
                let end = (at + rng.gen_range(1..64)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 => data.truncate(at),
            4 if !splice.is_empty() => {
                let piece = splice[rng.gen_range(0..splice.len())];
                data.splice(at..at, piece.iter().copied());
            }
            _ if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] = [0x00, 0xFF, 0x7F, 0x80, b'"', b'{', b'}', b'9'][rng.gen_range(0..8)];
            }
            _ => {}
        }
    }
    data
}

#[test]
fn media_stream_messages_never_panic_the_parser() {
    let seeds = [
        r#"{"event":"start","sequenceNumber":0,"start":{"mediaFormat":{"encoding":"PCM16","sampleRate":16000},"customParameters":"{\"call_id\":\"a\"}","tracks":["inbound"]}}"#,
        r#"{"event":"media","sequenceNumber":3,"media":{"chunk":"7","timestamp":"140","payload":"AAAAAAAA//8="}}"#,
        r#"{"event":"stop","sequenceNumber":9}"#,
    ];
    let splice: [&[u8]; 6] = [
        b"\"chunk\":18446744073709551615",
        b"\"sampleRate\":4294967295",
        b"\"encoding\":\"OPUS\"",
        b"\\u0000",
        b"[[[[[[[[",
        b"\"payload\":\"=====\"",
    ];
    let mut rng = StdRng::seed_from_u64(1);
    let mut parsed = 0;
    for _ in 0..iterations(20_000) {
        let seed = seeds[rng.gen_range(0..seeds.len())];
        let text =
            String::from_utf8_lossy(&mutate(&mut rng, seed.as_bytes(), &splice)).into_owned();
        if let Ok(protocol::Incoming::Media { samples_b64, .. }) = protocol::parse(&text) {
            // The payload decoder too, in every encoding.
            for e in [
                protocol::Encoding::Pcm8,
                protocol::Encoding::Pcm16,
                protocol::Encoding::Ulaw,
                protocol::Encoding::Alaw,
            ] {
                let _ = protocol::payload(&samples_b64, e);
            }
            parsed += 1;
        }
    }
    assert!(
        parsed > 0,
        "no mutated media frame parsed: the campaign tests nothing"
    );
}

/// A second of a chord at `rate`, as the encoders of the test setup write it.
fn sample_audio(format: &str) -> Vec<u8> {
    let pcm = voxd::audio::Pcm {
        samples: (0..16_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                ((t * 440.0 * std::f32::consts::TAU).sin()
                    + (t * 660.0 * std::f32::consts::TAU).sin())
                    * 0.3
            })
            .collect(),
        rate: 16_000,
    };
    common::encode(&pcm, format)
}

#[test]
fn broken_audio_files_are_refused_cleanly_and_quickly() {
    let mut rng = StdRng::seed_from_u64(2);
    for format in ["wav", "mp3", "ogg", "flac"] {
        let seed = sample_audio(format);
        let mut decoded = 0;
        let started = Instant::now();
        for _ in 0..iterations(2000) {
            let bytes = mutate(&mut rng, &seed, &[b"RIFF", b"OggS", b"fLaC", b"\xFF\xFB"]);
            let t = Instant::now();
            let result = voxd::audio::decode::decode(&bytes, 60.0);
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{format}: one file took {:?}",
                t.elapsed()
            );
            if let Ok(pcm) = result {
                // What decodes is bounded by the length limit.
                assert!(pcm.duration_secs() <= 60.0);
                decoded += 1;
            }
        }
        assert!(
            decoded > 0,
            "{format}: nothing decoded, the mutations are too coarse"
        );
        eprintln!("{format}: {decoded} decoded, in {:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_endpoint_answers_every_mutated_body_cleanly() {
    let h = harness();
    let seeds = [
        r#"{"call_id":"fuzz-1","event":"Connected","mode":"stream","caller":"+79001234567"}"#,
        r#"{"call_id":"fuzz-1","event":"Disconnected","reason":"Normal call clearing","duration":12}"#,
        r#"{"call_id":"fuzz-2","event":"TransferFailed","to":"+74950000000","code":486,"reason":"Busy"}"#,
    ];
    let splice: [&[u8]; 4] = [
        b"\"call_id\":\"../../etc\"",
        b"\"event\":[]",
        b"{}",
        b"\"mode\":\"x\"",
    ];
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..iterations(300) {
        let seed = seeds[rng.gen_range(0..seeds.len())];
        let body = mutate(&mut rng, seed.as_bytes(), &splice);
        let resp = client()
            .post(format!("http://{}/voximplant/events", h.api))
            .header("Authorization", common::auth())
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("not JSON ({e}) for {:?}", String::from_utf8_lossy(&body)));
        assert!(
            status < 500 || answer["error"]["code"] == "at_capacity",
            "{status} {answer} for {:?}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            assert!(answer["error"]["code"].is_string(), "{answer}");
        }
    }
    // voxd still answers; a long campaign's Connected events may have taken every place
    // (they are live calls until they idle out), which /health says as at_capacity.
    let health = reqwest::get(format!("http://{}/health", h.api))
        .await
        .unwrap();
    let status = health.status().as_u16();
    let body: Value = health.json().await.unwrap();
    assert!(
        status == 200 || (status == 503 && body["status"] == "at_capacity"),
        "{status} {body}"
    );
}

#[test]
fn the_config_loader_refuses_broken_files_without_panicking() {
    let seed = std::fs::read(common::repo().join("voxd.example.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("voxd.toml");
    let splice: [&[u8]; 5] = [
        b"\n[server]\n",
        b"max_connections = -1\n",
        b"= = =",
        b"\nparallel = 99999999999999999999\n",
        b"\"\\u0000\"",
    ];
    let mut rng = StdRng::seed_from_u64(4);
    let mut refused = 0;
    for _ in 0..iterations(400) {
        std::fs::write(&path, mutate(&mut rng, &seed, &splice)).unwrap();
        if let Err(e) = voxd::config::Config::load(Some(&path)) {
            assert!(!format!("{e:#}").is_empty());
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "every mutated config loaded: the campaign tests nothing"
    );
}
