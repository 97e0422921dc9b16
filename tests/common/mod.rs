//! Shared harness for the integration tests: the engines loaded once per test binary, the
//! real API served on loopback (a permissive instance and one with the production download
//! policy), a file server playing the recording host, and real audio encoders.
#![allow(dead_code)]

pub mod daemon;

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use voxd::audio::{resample, wav, Pcm};
use voxd::config::Config;
use voxd::engines::Engines;
use voxd::server::AppState;

pub const TOKEN: &str = "test-token";
/// The file server's address: loopback, but not 127.0.0.1, so the strict API instance can
/// allow exactly it and still refuse 127.0.0.1.
pub const FILES_IP: &str = "127.0.0.2";

/// What the recording host does for a path.
#[derive(Clone)]
pub enum Served {
    Bytes(Vec<u8>),
    Slow(Duration, Vec<u8>),
    Redirect(String),
    Status(u16),
    /// 404 for the first N requests (not published yet), then the bytes.
    NotYet(usize, Vec<u8>),
}

pub struct Harness {
    /// API that may download from any loopback address.
    pub api: SocketAddr,
    /// API with the production policy, plus `allowed_networks = [FILES_IP]`.
    pub strict_api: SocketAddr,
    pub files: SocketAddr,
    pub engines: Arc<Engines>,
    hosted: Files,
    rt: tokio::runtime::Handle,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test configuration: the test model set, a token, short download limits.
pub fn test_config() -> Config {
    let mut cfg = Config::load(None).expect("default config");
    let models = repo().join("models/test");
    assert!(
        models.join("ggml-tiny.en.bin").is_file(),
        "test models missing: run scripts/fetch-test-models (scripts/test does)"
    );
    cfg.models.stt = models.join("ggml-tiny.en.bin");
    cfg.models.llm = models.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    cfg.models.voice = models.join("en_US-joe-medium.onnx");
    cfg.models.onnxruntime = models.join("libonnxruntime.so.1.24.4");
    cfg.server.token = TOKEN.into();
    cfg.download.timeout_secs = 3.0;
    cfg.download.max_bytes = 2 * 1024 * 1024;
    cfg.stt.language = "en".into();
    // The same words sound the same in every run (Piper without its random noise), so a
    // test's transcript does not change from run to run (the scenario tests do the same).
    cfg.tts.deterministic = true;
    // The tests run calls side by side; tests/capacity.rs sets its own limit.
    cfg.calls.max_live = 16;
    // Four replies are written at once (each sequence holds a context's KV cache); more
    // wait for a free one.
    cfg.llm.parallel = 4;
    cfg.history.database =
        std::env::temp_dir().join(format!("voxd-test-history-{}.db", std::process::id()));
    cfg
}

/// The harness, started on first use and shared by every test of the binary.
pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(start)
}

fn start() -> Harness {
    // voxd's logs go to the test's output: a failing test shows what the daemon did.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("voxd=info")
        .with_test_writer()
        .try_init();
    let cfg = test_config();
    let engines = Arc::new(Engines::load(&cfg).expect("engines load"));
    let (tx, rx) = std::sync::mpsc::channel();
    let hosted = Files::default();
    let hosted2 = hosted.clone();
    let engines2 = engines.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let files = tokio::net::TcpListener::bind((FILES_IP, 0)).await.unwrap();
            let files_addr = files.local_addr().unwrap();
            let app = Router::new()
                .route("/f/{name}", get(serve_file))
                .with_state(hosted2);
            tokio::spawn(async move { axum::serve(files, app).await });

            let mut open = cfg.clone();
            open.download.allow_private = true;
            let api = spawn_api(open, engines2.clone()).await;
            let mut strict = cfg;
            strict.download.allowed_networks = vec![format!("{FILES_IP}/32")];
            let strict_api = spawn_api(strict, engines2).await;
            tx.send((
                api,
                strict_api,
                files_addr,
                tokio::runtime::Handle::current(),
            ))
            .unwrap();
            std::future::pending::<()>().await;
        });
    });
    let (api, strict_api, files, rt) = rx.recv().expect("harness thread");
    Harness {
        api,
        strict_api,
        files,
        engines,
        hosted,
        rt,
    }
}

/// Serves the API with `cfg` on a free loopback port, on the current runtime.
pub async fn spawn_api(cfg: Config, engines: Arc<Engines>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState::new(cfg, &engines, addr).expect("app state"));
    voxd::server::start_background(&state);
    tokio::spawn(voxd::server::serve_api(
        listener,
        state,
        std::future::pending(),
    ));
    addr
}

/// What the recording host serves, and how often each file was asked for.
#[derive(Clone, Default)]
struct Files(Arc<Mutex<Hosted>>);

#[derive(Default)]
struct Hosted {
    served: HashMap<String, Served>,
    hits: HashMap<String, usize>,
}

async fn serve_file(State(files): State<Files>, Path(name): Path<String>) -> Response {
    let (item, hits) = {
        let mut files = files.0.lock().unwrap();
        let hits = files.hits.entry(name.clone()).or_default();
        *hits += 1;
        let hits = *hits;
        (files.served.get(&name).cloned(), hits)
    };
    match item {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Served::Bytes(b)) => b.into_response(),
        Some(Served::Slow(d, b)) => {
            tokio::time::sleep(d).await;
            b.into_response()
        }
        Some(Served::Redirect(to)) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Some(Served::Status(s)) => StatusCode::from_u16(s).unwrap().into_response(),
        Some(Served::NotYet(misses, _)) if hits <= misses => StatusCode::NOT_FOUND.into_response(),
        Some(Served::NotYet(_, b)) => b.into_response(),
    }
}

impl Harness {
    /// Publishes `what` on the recording host; returns its URL.
    pub fn serve(&self, name: &str, what: Served) -> String {
        let mut hosted = self.hosted.0.lock().unwrap();
        hosted.served.insert(name.to_string(), what);
        format!("http://{}/f/{name}", self.files)
    }

    /// How many times the recording host was asked for `name`.
    pub fn hits(&self, name: &str) -> usize {
        let hosted = self.hosted.0.lock().unwrap();
        hosted.hits.get(name).copied().unwrap_or(0)
    }

    /// Piper speaks `text` (the voice's own rate).
    pub fn speak(&self, text: &str) -> Pcm {
        self.engines.tts.synthesize(text).expect("tts")
    }

    /// Whisper's transcript of some audio.
    pub fn hear(&self, pcm: Pcm) -> String {
        let pcm = resample::to_rate(pcm, 16_000).unwrap();
        self.engines.stt.transcribe(&pcm.samples).unwrap().text
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::task::block_in_place(|| self.rt.block_on(f))
    }
}

/// Encodes PCM with a real command-line encoder: "mp3" as Voximplant records (8 kHz mono,
/// 32 kbit/s, lame), "ogg" (Vorbis, oggenc), "flac" (flac), "wav" (voxd's own writer).
pub fn encode(pcm: &Pcm, format: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    let pcm = if format == "mp3" {
        resample::to_rate(pcm.clone(), 8000).unwrap()
    } else {
        pcm.clone()
    };
    let wav_bytes = wav::encode(&pcm).unwrap();
    if format == "wav" {
        return wav_bytes;
    }
    std::fs::write(&input, wav_bytes).unwrap();
    let out = dir.path().join(format!("out.{format}"));
    let mut cmd = match format {
        "mp3" => {
            let mut c = Command::new("lame");
            c.args(["--quiet", "-b", "32", "-m", "m"])
                .arg(&input)
                .arg(&out);
            c
        }
        "ogg" => {
            let mut c = Command::new("oggenc");
            c.arg("-Q").arg(&input).arg("-o").arg(&out);
            c
        }
        "flac" => {
            let mut c = Command::new("flac");
            c.args(["-s", "-f"]).arg(&input).arg("-o").arg(&out);
            c
        }
        other => panic!("unknown format {other}"),
    };
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{format} encoder missing (scripts/install-deps): {e}"));
    assert!(status.success(), "{format} encoder failed");
    std::fs::read(out).unwrap()
}

#[allow(unused_imports)] // Not every test binary checks transcripts.
pub use voxd::bench::wer::{wer, words};

/// Words the two texts share (ignoring case, punctuation and words under 3 letters).
pub fn shared_words(a: &str, b: &str) -> Vec<String> {
    let bw = words(b);
    words(a)
        .into_iter()
        .filter(|w| w.len() >= 3 && bw.contains(w))
        .collect()
}

/// How often [`wait_until`] looks again.
const POLL: Duration = Duration::from_millis(50);

/// Waits for something to happen instead of sleeping: runs `check` every 50 ms until it
/// gives `Ok`, and returns what it gave; an `Err` says what `check` saw instead. When
/// `timeout` passes first, the test fails naming `what` it waited for (a noun, as in
/// `Caller::wait_for`: "no {what} within …") and showing the last `Err`.
pub async fn wait_until<T, E, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match check().await {
            Ok(done) => return done,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "no {what} within {timeout:?}; last seen: {seen}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A client with the test token.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

pub fn auth() -> String {
    format!("Bearer {TOKEN}")
}

/// POSTs `body` (with the test token when `token`); the status and the JSON answer.
pub async fn post_json(
    url: String,
    body: serde_json::Value,
    token: bool,
) -> (u16, serde_json::Value) {
    let mut req = client().post(url).json(&body);
    if token {
        req = req.header("Authorization", auth());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// One recording turn on the API at `api`: `audio` (a file's bytes) published on the
/// recording host as `{call_id}.wav`, its URL posted to `/voximplant/process_audio` with the
/// test token; the JSON answer, its status checked.
pub async fn recording_turn(api: SocketAddr, call_id: &str, audio: Vec<u8>) -> serde_json::Value {
    let url = harness().serve(&format!("{call_id}.wav"), Served::Bytes(audio));
    let (status, body) = post_json(
        format!("http://{api}/voximplant/process_audio"),
        serde_json::json!({"call_id": call_id, "audio_url": url}),
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// GETs `path` on the API at `addr` with the test token; the status and the JSON answer.
pub async fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let resp = client()
        .get(format!("http://{addr}{path}"))
        .header("Authorization", auth())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// `GET /metrics` on the API at `addr` with the test token: the text exposition.
pub async fn metrics_text(addr: SocketAddr) -> String {
    client()
        .get(format!("http://{addr}/metrics"))
        .header("Authorization", auth())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `GET /voximplant/calls/{call_id}` on the permissive API instance.
pub async fn call_info(call_id: &str) -> serde_json::Value {
    get_json(harness().api, &format!("/voximplant/calls/{call_id}"))
        .await
        .1
}

/// What the end-of-turn `model` hears in the Asterisk prompt `name` of `set`: its
/// probability that the caller finished, for the whole prompt and for it cut at `cut`.
pub fn finished_whole_and_cut(
    model: &voxd::engines::smart_turn::SmartTurn,
    set: &str,
    name: &str,
    cut: f64,
) -> (f32, f32) {
    let [whole, part] = &prompt_cut(set, name, &[1.0, cut])[..] else {
        unreachable!()
    };
    (
        model.finished(whole).unwrap(),
        model.finished(part).unwrap(),
    )
}

/// An Asterisk prompt of `set` as a phone call hears it (8 kHz): for each of the `cuts`
/// (fractions of it up to its last voiced sample), its audio up to there and a fifth of a
/// second of silence.
pub fn prompt_cut(set: &str, name: &str, cuts: &[f64]) -> Vec<Pcm> {
    let path = repo().join(format!("models/speech/{set}/{name}.wav"));
    let bytes = std::fs::read(&path).expect("test speech: run scripts/fetch-test-speech");
    let pcm =
        voxd::audio::resample::to_rate(voxd::audio::decode::decode(&bytes, 30.0).unwrap(), 8000)
            .unwrap();
    let end = pcm.samples.iter().rposition(|s| s.abs() > 0.01).unwrap();
    cuts.iter()
        .map(|f| {
            let mut samples = pcm.samples[..(end as f64 * f) as usize].to_vec();
            samples.extend(std::iter::repeat_n(0.0, 1600));
            Pcm {
                samples,
                rate: 8000,
            }
        })
        .collect()
}
