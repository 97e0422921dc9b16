//! The `voxd` command line: serve the API, or use one engine directly from the shell.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use voxd::audio::{decode, resample, wav, STT_RATE};
use voxd::calls::{CallLog, Calls};
use voxd::config::Config;
use voxd::conversation::Assistant;
use voxd::engines::stt::Stt;
use voxd::engines::tts::Tts;
use voxd::engines::Engines;
use voxd::logging::Output;
use voxd::transport::mic;

#[derive(Parser)]
#[command(
    name = "voxd",
    version,
    about = "Self-hosted voice appliance: local Whisper, LLM and Piper for Voximplant calls"
)]
struct Cli {
    /// Config file (TOML); see voxd.example.toml. Without it: built-in defaults (test models).
    #[arg(short, long, global = true, env = "VOXD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the models and serve the HTTP API.
    Serve,
    /// Transcribe an audio file (MP3, WAV, OGG, FLAC) and print the text.
    Transcribe { file: PathBuf },
    /// Speak TEXT with the configured voice into a WAV file.
    Say {
        text: String,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Chat with the LLM on the terminal (one line per message; empty line or EOF ends).
    Chat,
    /// Validate the config and each model: present, checksum (SHA256SUMS beside it), loads,
    /// language served.
    Check,
    /// The knowledge base the answers come from: build its index, search it, try it.
    Kb {
        #[command(subcommand)]
        action: KbAction,
    },
    /// Talk to voxd through this machine's microphone and speaker (no telephony, no network).
    Mic {
        /// Microphone to listen on: a name from --list-devices (default: the system's).
        #[arg(long, value_name = "DEVICE")]
        input: Option<String>,
        /// Speaker to play voxd on: a name from --list-devices (default: the system's).
        #[arg(long, value_name = "DEVICE")]
        output: Option<String>,
        /// List the audio devices and the formats they offer, then exit.
        #[arg(long)]
        list_devices: bool,
        /// Let your voice interrupt voxd (use headphones: through speakers voxd hears itself).
        #[arg(long)]
        barge_in: bool,
        /// Write caller.wav, assistant.wav and transcript.txt of the conversation into DIR.
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
    },
    /// Measure latency through the real API on loopback: `turn` (recording URL),
    /// `stream` (real-time media stream, streaming vs sequential pipeline), `load`
    /// (simultaneous real-time calls), `llm` (tokens/s of replies written one at a time vs
    /// together), `kb` (knowledge base search time and its prompt cost), `listen`
    /// (transcribing while the caller speaks vs at the end: word error rate and time),
    /// `wer` (word error rate and real-time factor of the STT settings over a folder of
    /// recordings, --dir), `turn-taking` (the end of a turn told from a pause inside it, by
    /// the words and by the end-of-turn model, over one-sentence recordings, --dir) or
    /// `hostile` (what hostile clients do to a running voxd, with --url and its --config).
    Bench {
        #[arg(value_enum, default_value_t = BenchKind::Turn)]
        kind: BenchKind,
        /// Measured turns (after one warm-up); default 5 for turn, 20 for stream, 3 per
        /// caller for load, 3 rounds for llm and listen; for kb, searches per question
        /// (default 100); for hostile, sockets per check (default 300).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        runs: Option<u32>,
        /// `load`: the numbers of simultaneous callers to measure, e.g. 1,2,4,6,8; `llm`:
        /// the numbers of replies written at once.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        calls: Vec<usize>,
        /// `load`: measure a voxd already running at this address (e.g. 127.0.0.1:8080, an
        /// older build; its greeting and token off) instead of one in this process;
        /// `hostile`: the voxd to measure (required).
        #[arg(long, value_name = "HOST:PORT")]
        url: Option<std::net::SocketAddr>,
        /// `wer`: the folder of recordings (e.g. models/speech/asterisk-ru from
        /// scripts/fetch-test-speech); `turn-taking`: the folders whose one-sentence
        /// recordings make the set (repeat it; default: the English and Russian Asterisk sets).
        #[arg(long, value_name = "DIR")]
        dir: Vec<PathBuf>,
        /// `wer`: the transcript file, `name: words` per line (default: DIR/transcripts.txt).
        #[arg(long, value_name = "FILE")]
        transcripts: Option<PathBuf>,
        /// `wer`: score only the first N recordings; `turn-taking`: the first N sentences of
        /// each folder.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
enum KbAction {
    /// Index the company's documents (.txt, .md, .html files, or folders of them) into
    /// kb.index, replacing what was there.
    Index {
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
    },
    /// Print the passages that best match QUESTION, with their BM25 scores.
    Search {
        question: String,
        /// How many passages (default: kb.top_k).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        top: Option<u32>,
    },
    /// Print the passages and the LLM's answer to QUESTION, as a call would get it.
    Ask { question: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchKind {
    Turn,
    Stream,
    Load,
    Llm,
    Kb,
    Listen,
    Hostile,
    Wer,
    TurnTaking,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("voxd: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    // OpenMP threads of Whisper and llama.cpp must not spin against each other.
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        std::env::set_var("OMP_WAIT_POLICY", "PASSIVE");
    }
    let cfg = Config::load(cli.config.as_deref())?;
    // The microphone mode prints its own lines; the log shows only problems there.
    let quiet = matches!(cli.command, Command::Mic { .. });
    let output = if matches!(cli.command, Command::Serve) {
        Output::Stdout
    } else {
        Output::Stderr
    };
    let filter = if quiet { "warn" } else { "voxd=info,warn" };
    voxd::logging::init(cfg.server.log_format, filter, output);
    for warning in &cfg.warnings {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Serve => {
            // A port in use or a missing knowledge-base index fails at once, before the
            // models load; systemd shows what voxd is doing meanwhile.
            let listener = voxd::server::listen(&cfg)?;
            voxd::kb::KnowledgeBase::load(&cfg.kb)?;
            voxd::notify::notify("STATUS=loading the models");
            let engines = Arc::new(Engines::load(&cfg)?);
            runtime()?.block_on(voxd::server::serve(cfg, listener, engines))
        }
        Command::Transcribe { file } => {
            let stt = Stt::configured(&cfg)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let pcm = decode::decode(&bytes, f64::INFINITY)
                .with_context(|| format!("{}", file.display()))?;
            let pcm = resample::to_rate(pcm, STT_RATE)?;
            let t = stt.transcribe(&pcm.samples)?;
            println!("{}", t.text);
            Ok(())
        }
        Command::Say { text, output } => {
            let tts = Tts::load(&cfg.models, &cfg.tts, 1)?;
            let pcm = tts.synthesize(&text)?;
            std::fs::write(&output, wav::encode(&pcm)?)
                .with_context(|| format!("cannot write {}", output.display()))?;
            eprintln!(
                "wrote {} ({:.2} s at {} Hz)",
                output.display(),
                pcm.duration_secs(),
                pcm.rate
            );
            Ok(())
        }
        Command::Chat => voxd::commands::chat::run(&cfg),
        Command::Check => voxd::commands::check::run(&cfg),
        Command::Kb { action } => match action {
            KbAction::Index { paths } => voxd::commands::kb::index(&cfg, &paths),
            KbAction::Search { question, top } => {
                voxd::commands::kb::search(&cfg, &question, top.map(|n| n as usize))
            }
            KbAction::Ask { question } => voxd::commands::kb::ask(&cfg, &question),
        },
        Command::Mic {
            list_devices: true, ..
        } => mic::list_devices(),
        Command::Mic {
            input,
            output,
            barge_in,
            save,
            ..
        } => mic(
            &cfg,
            mic::Options {
                input,
                output,
                barge_in,
                save,
            },
        ),
        Command::Bench {
            kind: BenchKind::Turn,
            runs,
            ..
        } => runtime()?.block_on(voxd::bench::turn(cfg, runs.unwrap_or(5) as usize)),
        Command::Bench {
            kind: BenchKind::Stream,
            runs,
            ..
        } => runtime()?.block_on(voxd::bench::stream(cfg, runs.unwrap_or(20) as usize)),
        Command::Bench {
            kind: BenchKind::Load,
            runs,
            calls,
            url,
            ..
        } => runtime()?.block_on(voxd::bench::load(
            cfg,
            &calls,
            runs.unwrap_or(3) as usize,
            url,
        )),
        Command::Bench {
            kind: BenchKind::Llm,
            runs,
            calls,
            ..
        } => runtime()?.block_on(voxd::bench::llm(cfg, &calls, runs.unwrap_or(3) as usize)),
        Command::Bench {
            kind: BenchKind::Listen,
            runs,
            ..
        } => runtime()?.block_on(voxd::bench::listen(cfg, runs.unwrap_or(3) as usize)),
        Command::Bench {
            kind: BenchKind::Hostile,
            runs,
            url,
            ..
        } => runtime()?.block_on(voxd::bench::hostile(cfg, url, runs.unwrap_or(300) as usize)),
        Command::Bench {
            kind: BenchKind::Kb,
            runs,
            ..
        } => voxd::bench::kb(cfg, runs.unwrap_or(100) as usize),
        Command::Bench {
            kind: BenchKind::Wer,
            dir,
            transcripts,
            limit,
            ..
        } => {
            let [dir] = <[PathBuf; 1]>::try_from(dir)
                .ok()
                .context("bench wer needs --dir: one folder of recordings")?;
            voxd::bench::wer_set(
                &cfg,
                &dir,
                transcripts.as_deref(),
                limit.unwrap_or(usize::MAX),
            )
        }
        Command::Bench {
            kind: BenchKind::TurnTaking,
            dir,
            limit,
            ..
        } => {
            let dirs = if dir.is_empty() {
                ["asterisk-en", "asterisk-ru"]
                    .map(|set| PathBuf::from("models/speech").join(set))
                    .to_vec()
            } else {
                dir
            };
            voxd::bench::turn_taking(&cfg, &dirs, limit.unwrap_or(usize::MAX))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn mic(cfg: &Config, opts: mic::Options) -> Result<()> {
    let audio = mic::Audio::open(&opts)?;
    println!("loading the models…");
    let kb = voxd::kb::KnowledgeBase::load(&cfg.kb)?;
    // One caller, the machine's user: one LLM sequence, and no call capacity to measure.
    let mut one_call = cfg.clone();
    one_call.calls.max_live = 1;
    let engines = Engines::load(&one_call)?;
    let assistant = Arc::new(Assistant::from_engines(&engines, kb, cfg)?);
    let history = match cfg.history.database.as_os_str().is_empty() {
        true => None,
        false => Some(voxd::calls::history::History::open(&cfg.history.database)?),
    };
    let log = CallLog::new(history, Default::default(), cfg.tools.clone());
    let idle = std::time::Duration::from_secs(cfg.calls.idle_timeout_secs);
    let calls = Arc::new(Calls::new(idle, 1, Arc::new(log)));
    let rt = runtime()?;
    let result = rt.block_on(mic::talk(cfg, assistant, calls, audio, &opts));
    // A transcription still running must not hold the exit for long.
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}
