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

/// What a real-time benchmark's caller says, and how long its audio goes on after the
/// last voiced sample (the silence a recording or the voice leaves after the words).
#[derive(Clone)]
struct Question {
    audio: Pcm,
    tail: std::time::Duration,
}

impl Question {
    fn new(audio: Pcm) -> Self {
        let last = audio.samples.iter().rposition(|s| s.abs() > 0.02);
        let after = audio.samples.len() - last.map_or(0, |i| i + 1);
        let tail = std::time::Duration::from_secs_f64(after as f64 / f64::from(audio.rate));
        Self { audio, tail }
    }
}

/// Questions spoken by the voice (English; Russian too when the voice speaks it).
const ENGLISH_QUESTIONS: [&str; 20] = [
    "Hello, what time do you open on Saturday?",
    "Can I book a table for four people tonight?",
    "How much does the delivery cost?",
    "Do you have any vegetarian dishes?",
    "Is there parking near the restaurant?",
    "Can I pay by card when the courier arrives?",
    "I ordered a cake yesterday and it still has not arrived, what happened?",
    "Do you deliver to the airport?",
    "What is your phone number for reservations?",
    "Hi, I would like to cancel my order, please.",
    "Are you open on public holidays?",
    "How long does a delivery usually take?",
    "Do you have gluten free bread?",
    "Can I change the address of my order?",
    "My name is Anna and I booked a table for seven, can you check it?",
    "What is the cheapest thing on the menu?",
    "Can I speak to a manager?",
    "Do you sell gift cards?",
    "Is the kitchen still open after ten in the evening?",
    "How do I get to you from the central station?",
];
const RUSSIAN_QUESTIONS: [&str; 10] = [
    "Здравствуйте, во сколько вы открываетесь в субботу?",
    "Можно забронировать столик на четверых на вечер?",
    "Сколько стоит доставка?",
    "Есть ли у вас вегетарианские блюда?",
    "Можно оплатить картой курьеру?",
    "Я заказал торт вчера, а его до сих пор нет, что случилось?",
    "Вы работаете в праздники?",
    "Как долго обычно идёт доставка?",
    "Можно поговорить с менеджером?",
    "Как до вас доехать от вокзала?",
];
/// Recorded sentences taken from each Asterisk set that is present.
const RECORDED_PER_SET: usize = 10;

/// What the real-time benchmarks' callers say: twenty different English questions spoken
/// by the voice (ten Russian ones too when the voice speaks Russian), and real recorded
/// speech: one-sentence prompts of the English and Russian Asterisk sets, where present.
async fn questions(tts: Arc<Tts>) -> Result<Vec<Question>> {
    let russian = tts.language_code() == "ru";
    let spoken: Vec<Question> = tokio::task::spawn_blocking(move || {
        let texts = ENGLISH_QUESTIONS
            .iter()
            .chain(RUSSIAN_QUESTIONS.iter().filter(|_| russian));
        texts
            .map(|q| tts.synthesize(q).map(Question::new))
            .collect::<Result<Vec<_>>>()
    })
    .await??;
    let recorded = ["asterisk-en", "asterisk-ru"].into_iter().flat_map(|set| {
        let dir = std::path::Path::new("models/speech").join(set);
        turn_taking::sentences(&dir, RECORDED_PER_SET)
    });
    // Spoken and recorded in turn, so that a short run hears both.
    let (mut s, mut r) = (
        spoken.into_iter(),
        recorded.map(|samples| Question::new(Pcm::from_i16(&samples, 8000))),
    );
    let mut mixed = Vec::new();
    loop {
        match (s.next(), r.next()) {
            (None, None) => break,
            (a, b) => mixed.extend(a.into_iter().chain(b)),
        }
    }
    Ok(mixed)
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
