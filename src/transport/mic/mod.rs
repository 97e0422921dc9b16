//! `voxd mic`: a conversation through this machine's microphone and speaker, driven by the
//! same [`Conversation`] engine and [`Driver`] loop as calls, and recorded like one (the
//! history, leads). Opens the devices (before the models load, so a device problem is
//! reported at once), converts the capture to 16 kHz mono, plays voxd's speech at the
//! speaker's rate, prints what happens, and ends on Ctrl-C or a goodbye.

pub mod devices;
mod fault_policy;
mod microphone;
mod recording;
mod speaker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::audio::{resample, wav::to_i16, STT_RATE};
use crate::calls::{CallId, CallRecorder, Calls};
use crate::config::Config;
use crate::conversation::{Assistant, Conversation, Output, Settings};
use crate::metrics::Transport;
use crate::transport::driver::{Driver, Step};
use devices::Direction;
use fault_policy::{FaultPolicy, Verdict};
use microphone::Microphone;
use recording::Recording;
use speaker::Speaker;

/// Where the audio callbacks report device errors.
type Faults = UnboundedSender<(Direction, cpal::Error)>;

/// Calls `$build::<T>($args..)` with `T` the Rust type of the cpal sample format `$format`.
macro_rules! with_sample_type {
    ($format:expr, $build:ident, $($arg:expr),*) => {
        match $format {
            cpal::SampleFormat::I8 => $build::<i8>($($arg),*),
            cpal::SampleFormat::I16 => $build::<i16>($($arg),*),
            cpal::SampleFormat::I24 => $build::<cpal::I24>($($arg),*),
            cpal::SampleFormat::I32 => $build::<i32>($($arg),*),
            cpal::SampleFormat::I64 => $build::<i64>($($arg),*),
            cpal::SampleFormat::U8 => $build::<u8>($($arg),*),
            cpal::SampleFormat::U16 => $build::<u16>($($arg),*),
            cpal::SampleFormat::U24 => $build::<cpal::U24>($($arg),*),
            cpal::SampleFormat::U32 => $build::<u32>($($arg),*),
            cpal::SampleFormat::U64 => $build::<u64>($($arg),*),
            cpal::SampleFormat::F32 => $build::<f32>($($arg),*),
            cpal::SampleFormat::F64 => $build::<f64>($($arg),*),
            other => Err(cpal::Error::with_message(
                cpal::ErrorKind::UnsupportedConfig,
                format!("sample format {other}"),
            )),
        }
    };
}
use with_sample_type;

/// What `voxd mic` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Microphone name (see `--list-devices`); none: the system's default.
    pub input: Option<String>,
    /// Speaker name; none: the system's default.
    pub output: Option<String>,
    /// Let the user's voice interrupt voxd (needs headphones).
    pub barge_in: bool,
    /// Save the conversation into this directory.
    pub save: Option<PathBuf>,
}

/// Prints every audio device with what it offers for recording and playback.
pub fn list_devices() -> Result<()> {
    let host = cpal::default_host();
    println!("audio devices ({}):", host.id().name());
    for line in devices::list(&host)? {
        println!("{line}");
    }
    Ok(())
}

/// The microphone and the speaker, open but not yet running.
pub struct Audio {
    mic: Microphone,
    speaker: Speaker,
    pieces: UnboundedReceiver<Vec<f32>>,
    faults: UnboundedReceiver<(Direction, cpal::Error)>,
}

impl Audio {
    /// Opens the devices named in `opts` (or the defaults) in the formats they prefer.
    pub fn open(opts: &Options) -> Result<Self> {
        let host = cpal::default_host();
        let input = devices::choose(&host, Direction::Input, opts.input.as_deref())?;
        let output = devices::choose(&host, Direction::Output, opts.output.as_deref())?;
        println!(
            "microphone: {} ({})\nspeaker:    {} ({})",
            input.name,
            devices::describe(&input.config),
            output.name,
            devices::describe(&output.config)
        );
        let (fault_tx, faults) = mpsc::unbounded_channel();
        let (piece_tx, pieces) = mpsc::unbounded_channel();
        let mic = Microphone::open(input, piece_tx, fault_tx.clone())?;
        let speaker = Speaker::open(output, fault_tx)?;
        Ok(Self {
            mic,
            speaker,
            pieces,
            faults,
        })
    }
}

/// Runs the conversation until Ctrl-C, a goodbye or a device failure, then closes the devices.
pub async fn talk(
    cfg: &Config,
    assistant: Arc<Assistant>,
    calls: Arc<Calls>,
    audio: Audio,
    opts: &Options,
) -> Result<()> {
    let mut audio = audio;
    let call = calls.open(&CallId::random("mic-"), Transport::Mic);
    let result = converse(cfg, assistant, call.clone(), &mut audio, opts).await;
    calls.end(
        call.id(),
        if result.is_ok() {
            "caller_hangup"
        } else {
            "device_error"
        },
    );
    call.ended(if result.is_ok() { "ended" } else { "failed" }, "mic");
    close(audio);
    result
}

/// Closes the devices, waiting at most two seconds: a stream whose sound server died can
/// stay blocked inside alsa-lib, and waiting for it would hang voxd on its way out.
fn close(audio: Audio) {
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(audio);
        let _ = done_tx.send(());
    });
    if done.recv_timeout(Duration::from_secs(2)).is_err() {
        tracing::warn!("an audio device did not close; leaving it to the exit");
    }
}

async fn converse(
    cfg: &Config,
    assistant: Arc<Assistant>,
    call: Arc<CallRecorder>,
    audio: &mut Audio,
    opts: &Options,
) -> Result<()> {
    let Audio {
        mic,
        speaker,
        pieces,
        faults,
    } = audio;
    let mut settings = Settings::from_config(cfg);
    settings.barge_in = opts.barge_in;
    let end_of_turn_ms = settings.turns.end_silence_ms;
    let conversation = Conversation::new(assistant.clone(), settings);
    let mut driver = Driver::new(conversation, assistant);
    let mut recording = match &opts.save {
        Some(dir) => Some(Recording::create(dir, STT_RATE, speaker.rate)?),
        None => None,
    };
    let mut to_stt_rate = resample::Live::new(mic.rate, STT_RATE)?;
    let mut screen = Screen::new(end_of_turn_ms);
    println!(
        "barge-in {}. Ctrl-C ends.",
        if opts.barge_in {
            "on: speak to interrupt voxd"
        } else {
            "off (voxd does not listen while it speaks; with headphones, --barge-in lets you interrupt it)"
        }
    );
    mic.play()?;
    speaker.play()?;
    let mut outputs =
        driver
            .conversation
            .start(call.clone(), STT_RATE, speaker.rate, Instant::now());
    if cfg.conversation.greeting.is_empty() {
        screen.listening();
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut policy = FaultPolicy::default();
    loop {
        let mut ended = false;
        for output in outputs {
            ended |= screen.show(&output, speaker, recording.as_mut())?;
        }
        if ended {
            wait_until_played(speaker).await;
            println!("voxd ended the conversation.");
            break;
        }
        let input = async {
            tokio::select! {
                Some(piece) = pieces.recv() => Input::Piece(piece),
                Some((direction, e)) = faults.recv() => Input::Fault(direction, e),
                r = &mut ctrl_c => Input::CtrlC(r),
            }
        };
        outputs = match driver.next(input).await {
            Step::Tick(outputs) => {
                let now = Instant::now();
                if let Some((direction, e)) =
                    policy.stalled([mic.progress(), speaker.progress()], now)
                {
                    return Err(devices::failed(
                        e,
                        direction,
                        device_name(mic, speaker, direction),
                    ));
                }
                outputs
            }
            Step::Update(outputs) => outputs,
            Step::Input(Input::Piece(piece)) => {
                let samples: Vec<i16> = to_stt_rate.push(&piece)?.into_iter().map(to_i16).collect();
                if let Some(r) = recording.as_mut() {
                    r.caller(&samples)?;
                }
                driver.conversation.push_audio(&samples, Instant::now())
            }
            Step::Input(Input::Fault(direction, e)) => {
                let name = device_name(mic, speaker, direction);
                let progress = match direction {
                    Direction::Input => mic.progress(),
                    Direction::Output => speaker.progress(),
                };
                let message = e.to_string();
                match policy.error(direction, e, progress, Instant::now()) {
                    Verdict::Ignore => tracing::debug!(?direction, "audio: {message}"),
                    Verdict::Warn => tracing::warn!("the audio device {name:?} reported an error; waiting for it to go on: {message}"),
                    Verdict::Fatal => return Err(devices::failed(&message, direction, name)),
                }
                Vec::new()
            }
            Step::Input(Input::CtrlC(r)) => {
                r.context("cannot wait for Ctrl-C")?;
                println!();
                break;
            }
        };
    }
    drop(driver);
    screen.summary(call.turns());
    if let (Some(r), Some(dir)) = (recording, &opts.save) {
        r.finish()?;
        println!(
            "saved caller.wav, assistant.wav and transcript.txt in {}",
            dir.display()
        );
    }
    Ok(())
}

/// What the devices or the user did.
enum Input {
    Piece(Vec<f32>),
    Fault(Direction, cpal::Error),
    CtrlC(std::io::Result<()>),
}

fn device_name<'a>(mic: &'a Microphone, speaker: &'a Speaker, direction: Direction) -> &'a str {
    match direction {
        Direction::Input => &mic.name,
        Direction::Output => &speaker.name,
    }
}

/// Lets the speaker play what is still queued (at most a couple of seconds).
async fn wait_until_played(speaker: &Speaker) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !speaker.drained() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The terminal side: one line per event, per-turn latency, the speaker fed.
struct Screen {
    end_of_turn_ms: usize,
    /// The last turn was heard after this long; its reply latency is still to print.
    pending_turn: Option<Duration>,
    latencies_ms: Vec<f64>,
}

impl Screen {
    fn new(end_of_turn_ms: usize) -> Self {
        Self {
            end_of_turn_ms,
            pending_turn: None,
            latencies_ms: Vec::new(),
        }
    }

    fn listening(&self) {
        println!("listening…");
    }

    /// Acts on one output; true when the conversation is over.
    fn show(
        &mut self,
        output: &Output,
        speaker: &Speaker,
        recording: Option<&mut Recording>,
    ) -> Result<bool> {
        match output {
            Output::Heard { text, after } => {
                if text.is_empty() {
                    println!("heard nothing intelligible");
                    self.listening();
                } else {
                    println!("heard: \"{text}\"");
                    self.pending_turn = Some(*after);
                    if let Some(r) = recording {
                        r.line("caller", text)?;
                    }
                }
            }
            Output::Replying(text) => println!("replying: \"{text}\""),
            Output::Audio(frame) => {
                speaker.push(frame);
                if let Some(r) = recording {
                    r.assistant(frame)?;
                }
            }
            Output::Clear => {
                speaker.clear();
                println!("(interrupted)");
            }
            Output::AudioStart | Output::AudioStop => {}
            Output::Said {
                text,
                latency_ms,
                interrupted,
            } => {
                if let (Some(heard), Some(ms)) = (self.pending_turn.take(), latency_ms) {
                    self.latencies_ms.push(*ms);
                    println!(
                        "latency: {ms:.0} ms from the end of your turn to voxd's first word \
                         (transcript after {} ms; the turn ends after {} ms of silence)",
                        heard.as_millis(),
                        self.end_of_turn_ms
                    );
                }
                if let Some(r) = recording {
                    let cut = if *interrupted { " [interrupted]" } else { "" };
                    r.line("voxd", &format!("{text}{cut}"))?;
                }
                self.listening();
            }
            Output::Tool(tool) => println!("voxd called the tool {}: {tool:?}", tool.name()),
            Output::Transfer => {
                println!("voxd hands the call to the operator (tools.operator_phone)");
                return Ok(true);
            }
            Output::Hangup => return Ok(true),
        }
        Ok(false)
    }

    fn summary(&self, turns: u32) {
        let n = self.latencies_ms.len();
        if n == 0 {
            println!("{turns} turn(s).");
            return;
        }
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{turns} turn(s); reply latency median {:.0} ms, worst {:.0} ms.",
            sorted[n / 2],
            sorted[n - 1]
        );
    }
}
