//! `voxd bench`: latency measurements through the real API on loopback, with the
//! configured models. `turn` measures the recording-URL turn, `stream` real-time calls,
//! `load` several simultaneous real-time calls, `llm` batched generation's tokens/s,
//! `kb` the knowledge base's search and prompt cost, `listen` transcribing while the caller
//! speaks against at the end, `hostile` what hostile clients do to a running voxd, `wer`
//! the STT's word error rate over a folder of recordings ([`recordings`]), `turn-taking`
//! how the end of a turn is told from a pause inside it ([`turn_taking`]). [`caller`]
//! is the media-stream client
//! they (and the tests) call voxd with.

pub mod caller;
mod hostile;
mod kb;
mod listen;
mod llm;
mod load;
pub mod recordings;
mod stream;
mod turn;
mod turn_taking;
pub mod wer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::net::TcpListener;

use crate::audio::Pcm;
use crate::config::Config;
use crate::engines::tts::Tts;
use crate::engines::Engines;
use crate::engines::{LlmEvent, TextStream};
use crate::metrics::percentile::{median, percentile};
use crate::server::AppState;

pub use hostile::run as hostile;
pub use kb::run as kb;
pub use listen::run as listen;
pub use llm::run as llm;
pub use load::run as load;
pub use recordings::run as wer_set;
pub use stream::run as stream;
pub use turn::run as turn;
pub use turn_taking::run as turn_taking;

/// This run's mark in the ids of the calls it makes (8 hex digits): an ended call's id is
/// never opened again, so runs against one voxd (or one history) must not repeat ids.
fn run_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| format!("{:08x}", rand::random::<u32>()))
}

/// Loads the engines for a benchmark. The voice is made deterministic, so that every run
/// hears the same words and the LLM writes the same replies: runs and settings compare.
async fn load_engines(cfg: &mut Config) -> Result<Arc<Engines>> {
    cfg.tts.deterministic = true;
    let t = Instant::now();
    let c = cfg.clone();
    let engines = Arc::new(tokio::task::spawn_blocking(move || Engines::load(&c)).await??);
    println!(
        "models loaded in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(engines)
}

/// What the real-time benchmarks' callers ask, spoken by the voice.
async fn speak_questions(tts: Arc<Tts>) -> Result<Vec<Pcm>> {
    const QUESTIONS: [&str; 4] = [
        "Hello, what time do you open on Saturday?",
        "Can I book a table for four people tonight?",
        "How much does the delivery cost?",
        "Do you have any vegetarian dishes?",
    ];
    tokio::task::spawn_blocking(move || QUESTIONS.iter().map(|q| tts.synthesize(q)).collect())
        .await?
}

/// A reply read to its end by a benchmark.
struct Read {
    /// When its first text came (None: it wrote no text).
    first: Option<Instant>,
    /// When it was done.
    done: Instant,
    generated: usize,
    prompt_evaluated: usize,
}

/// Reads a reply to its end, noting when its first text came.
async fn read_reply(mut stream: TextStream) -> Result<Read> {
    let mut first = None;
    while let Some(ev) = stream.next().await {
        match ev {
            LlmEvent::Text(_) => {
                first.get_or_insert_with(Instant::now);
            }
            LlmEvent::Done {
                generated,
                prompt_evaluated,
                ..
            } => {
                return Ok(Read {
                    first,
                    done: Instant::now(),
                    generated,
                    prompt_evaluated,
                })
            }
            LlmEvent::Error(e) => anyhow::bail!(e),
        }
    }
    anyhow::bail!("the LLM stopped without finishing")
}

/// Serves the API with `cfg` on a free loopback port.
async fn spawn_api(cfg: Config, engines: Arc<Engines>) -> Result<SocketAddr> {
    let api = TcpListener::bind("127.0.0.1:0").await?;
    let addr = api.local_addr()?;
    let state = Arc::new(AppState::new(cfg, &engines, addr)?);
    tokio::spawn(crate::server::serve_api(api, state, std::future::pending()));
    Ok(addr)
}
