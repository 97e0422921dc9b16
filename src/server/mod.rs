//! The daemon's HTTP server (axum): the shared state, the routes (the Voximplant transports'
//! endpoints plus the admin API: health, metrics, history, outbound calls), serving within
//! the connection limits ([`connections`]) until a signal, then draining, and the history's
//! background work.

pub(crate) mod call_history;
pub mod connections;
mod health;
mod metrics;
mod place_call;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::calls::history::History;
use crate::calls::{tool_effects, CallLog, Calls, Lifetimes};
use crate::config::Config;
use crate::console;
use crate::conversation::{Assistant, Settings};
use crate::engines::schedule::EngineLoad;
use crate::engines::{Engines, ModelNames};
use crate::http::body_deadline::{self, BodyDeadline};
use crate::http::drain::{self, Drain, Signals};
use crate::http::host_guard::{self, AllowedHosts};
use crate::http::{auth, error, error::ApiError};
use crate::kb::KnowledgeBase;
use crate::metrics::{Metrics, Transport};
use crate::outbound::ManagementApi;
use crate::transport::voximplant_http::audio_store::{AudioStore, Bounds};
use crate::transport::voximplant_http::{self, RecordingContext};
use crate::transport::voximplant_ws::{self, StreamContext};

/// Everything a request handler can reach; each transport takes only its own context.
pub struct AppState {
    pub cfg: Config,
    pub models: ModelNames,
    pub calls: Arc<Calls>,
    pub started: Instant,
    pub drain: Drain,
    pub recording: Arc<RecordingContext>,
    pub stream: Arc<StreamContext>,
    /// Voximplant's Management API for outbound calls (None until `[voximplant]` is set).
    pub outbound: Option<ManagementApi>,
    /// The API's tokens by scope.
    pub tokens: Arc<auth::Tokens>,
    /// When the last outbound calls were placed (`voximplant.max_calls_per_minute`).
    pub placed: std::sync::Mutex<std::collections::VecDeque<Instant>>,
    /// Consoles following the live calls ([`crate::console::live`]).
    pub console_viewers: std::sync::atomic::AtomicUsize,
}

/// The router's state: the whole state for the server's own handlers, each transport's
/// context for its handlers.
#[derive(Clone)]
struct Shared(Arc<AppState>);

impl FromRef<Shared> for Arc<AppState> {
    fn from_ref(shared: &Shared) -> Self {
        shared.0.clone()
    }
}

impl FromRef<Shared> for Arc<RecordingContext> {
    fn from_ref(shared: &Shared) -> Self {
        shared.0.recording.clone()
    }
}

impl FromRef<Shared> for Arc<StreamContext> {
    fn from_ref(shared: &Shared) -> Self {
        shared.0.stream.clone()
    }
}

impl AppState {
    /// The state of a voxd on `engines`, with the knowledge base it configures.
    pub fn new(cfg: Config, engines: &Engines, bound: SocketAddr) -> Result<Self> {
        let kb = KnowledgeBase::load(&cfg.kb)?;
        let assistant = Arc::new(Assistant::from_engines(engines, kb, &cfg)?);
        // This state's own limit, else what the engines measured.
        let capacity = match cfg.calls.max_live {
            0 => engines.capacity,
            n => n as usize,
        };
        Self::with_assistant(
            cfg,
            assistant,
            engines.names.clone(),
            engines.load_secs,
            capacity,
            bound,
        )
    }

    /// The state, with the call history opened (and migrated); `load_secs` are the
    /// engines' load times for the metrics, `capacity` the live calls served at once.
    pub fn with_assistant(
        cfg: Config,
        assistant: Arc<Assistant>,
        models: ModelNames,
        load_secs: [(&'static str, f64); 3],
        capacity: usize,
        bound: SocketAddr,
    ) -> Result<Self> {
        let history = if cfg.history.database.as_os_str().is_empty() {
            None
        } else {
            Some(History::open(&cfg.history.database)?)
        };
        let outbound = ManagementApi::from_config(&cfg.voximplant)?;
        let tokens = Arc::new(auth::Tokens::from_config(&cfg));
        if let Some(api) = &outbound {
            tracing::info!("outbound calls: Voximplant {}", api.describe());
        }
        let metrics = Arc::new(Metrics::default());
        for (engine, secs) in load_secs {
            metrics.model_loaded(engine, secs);
        }
        let log = Arc::new(CallLog::new(history, metrics, cfg.tools.clone()));
        tracing::info!(capacity, max_live = cfg.calls.max_live, "call capacity");
        let secs = Duration::from_secs;
        let lifetimes = Lifetimes {
            idle: secs(cfg.calls.idle_timeout_secs),
            recording_idle: secs(cfg.calls.recording_idle_secs),
            max_call: secs(cfg.calls.max_call_secs),
        };
        let calls = Arc::new(Calls::new(lifetimes.idle, capacity, log).with_lifetimes(lifetimes));
        let drain = Drain::default();
        let reply_rate = cfg.tts.reply_sample_rate;
        let recording = Arc::new(RecordingContext {
            assistant: assistant.clone(),
            calls: calls.clone(),
            drain: drain.clone(),
            audio: AudioStore::new(Bounds {
                ttl: Duration::from_secs(cfg.calls.reply_audio_ttl_secs),
                max_files: cfg.calls.reply_audio_max_files as usize,
                max_bytes: cfg.calls.reply_audio_max_mb as usize * 1024 * 1024,
            }),
            public_url: cfg.public_url(bound),
            download: cfg.download.clone(),
            max_audio_secs: cfg.calls.max_audio_secs,
            reply_rate: (reply_rate > 0).then_some(reply_rate),
            greeting: cfg.conversation.greeting.clone(),
            operator_phone: cfg.tools.operator_phone.clone(),
            key_actions: cfg.key_actions(),
            retry_after_secs: cfg.calls.retry_after_secs,
            progressive_format: cfg.calls.progressive_format,
            greeting_audio: tokio::sync::OnceCell::new(),
        });
        let stream = Arc::new(StreamContext {
            assistant,
            settings: Settings::from_config(&cfg),
            calls: calls.clone(),
            drain: drain.clone(),
            tokens: tokens.clone(),
            output: cfg.voximplant_stream.encoding.0,
            tag: Some(cfg.voximplant_stream.tag.clone()).filter(|t| !t.is_empty()),
            operator_phone: cfg.tools.operator_phone.clone(),
            max_frame_bytes: cfg.voximplant_stream.max_frame_bytes as usize,
            start_timeout: Duration::from_secs(cfg.voximplant_stream.start_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(cfg.voximplant_stream.idle_timeout_secs.max(1)),
            retry_after_secs: cfg.calls.retry_after_secs,
            tickets: Default::default(),
        });
        Ok(Self {
            outbound,
            tokens,
            placed: Default::default(),
            console_viewers: Default::default(),
            models,
            calls,
            drain,
            recording,
            stream,
            cfg,
            started: Instant::now(),
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.calls.log().metrics
    }

    /// What the engines are doing now.
    pub fn engine_load(&self) -> EngineLoad {
        self.stream.assistant.engine_load()
    }

    /// The base URL reply audio links point at.
    pub fn public_url(&self) -> &str {
        &self.recording.public_url
    }
}

/// The router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    let tokens = state.tokens.clone();
    let open = tokens.scenario.is_empty() && tokens.admin.is_empty();
    let hosts = Arc::new(AllowedHosts::new(open, &state.cfg.server.allowed_hosts));
    let seconds = state.cfg.server.header_timeout_secs.max(1);
    let deadline = Arc::new(BodyDeadline(Duration::from_secs(seconds)));
    let scenario = Router::new()
        .route(
            "/voximplant/process_audio",
            post(voximplant_http::process_audio::handle),
        )
        .route("/voximplant/events", post(voximplant_http::events::handle))
        .route(
            "/voximplant/calls/{call_id}",
            get(voximplant_http::events::show),
        )
        .route(
            "/voximplant/replies/{id}",
            get(voximplant_http::progressive::show),
        )
        // Inside the token check: a stranger's body is never read.
        .route_layer(axum::middleware::from_fn_with_state(
            deadline.clone(),
            body_deadline::read_in_time,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            (tokens.clone(), auth::Scope::Scenario),
            auth::require,
        ));
    let admin = Router::new()
        .route("/calls", get(call_history::list).post(place_call::handle))
        .route("/calls/{call_id}", get(call_history::show))
        .route("/console/api/live", get(console::live::list))
        .route("/console/api/live/stream", get(console::live::stream))
        .route("/console/api/latency", get(console::insights::latency))
        .route("/console/api/kb", get(console::insights::kb))
        .route("/console/api/test_call", post(console::test_call::start))
        .route_layer(axum::middleware::from_fn_with_state(
            deadline,
            body_deadline::read_in_time,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            (tokens, auth::Scope::Admin),
            auth::require,
        ));
    Router::new()
        .route("/", get(console::root))
        .route("/console/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .route("/health", get(health::handle))
        .route("/metrics", get(metrics::handle))
        .route(
            "/audio/{file}",
            get(voximplant_http::process_audio::serve_audio),
        )
        .route("/voximplant/stream", get(voximplant_ws::handle))
        .merge(scenario)
        .merge(admin)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            host_guard::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics().clone(),
            error::count,
        ))
        .with_state(Shared(state))
}

/// Binds the configured address, serves `engines` until SIGTERM or SIGINT, then drains
/// (see [`drain`]).
/// Binds `server.bind`, before anything slow: a port already in use fails at once, not
/// after the models have loaded. Connections wait in the backlog until [`serve`] accepts.
pub fn listen(cfg: &Config) -> Result<std::net::TcpListener> {
    let addr = cfg.bind_addr()?;
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the API on `listener` (from [`listen`]) until a signal, then drains.
pub async fn serve(
    cfg: Config,
    listener: std::net::TcpListener,
    engines: Arc<Engines>,
) -> Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let bound = listener.local_addr()?;
    let tokens = auth::Tokens::from_config(&cfg);
    if tokens.admin.is_empty() {
        tracing::warn!("server.token is empty: the API is open to anyone who can reach {bound}");
    } else if tokens.unscoped() {
        tracing::warn!(
            "server.token opens every endpoint: the copy in your VoxEngine scenarios can also \
             place calls and read every transcript; set server.scenario_token and \
             server.admin_token instead"
        );
    }
    let state = Arc::new(AppState::new(cfg, &engines, bound)?);
    start_background(&state);
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    tracing::info!(%bound, public_url = %state.public_url(), "voxd listening");
    crate::notify::notify(&format!("READY=1\nSTATUS=serving on {bound}"));
    if let Some(every) = crate::notify::watchdog_interval() {
        // The pings stop once an engine died: systemd restarts voxd (WatchdogSec).
        let watched = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let dead = watched.stream.assistant.dead_engines();
                if !dead.is_empty() {
                    tracing::error!(
                        ?dead,
                        "an engine died: no more watchdog pings, systemd restarts voxd"
                    );
                    return;
                }
                crate::notify::notify("WATCHDOG=1");
            }
        });
    }
    let stopped = state.drain.clone().stopped();
    let mut server = tokio::spawn(serve_api(listener, state.clone(), stopped));
    tokio::select! {
        result = &mut server => return Ok(result??),
        sig = signals.recv() => tracing::info!("{sig}: shutting down"),
    }
    let grace = Duration::from_secs(state.cfg.server.drain_grace_secs);
    drain::run(&state.drain, &state.calls, grace, &mut signals, server).await;
    tracing::info!("voxd stopped");
    Ok(())
}

/// Serves the API of `state` on `listener`, within the connection limits of its config,
/// until `shutdown` resolves (then the open connections finish).
pub async fn serve_api(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = connections::Limits {
        max_connections: state.cfg.server.max_connections as usize,
        max_per_address: state.cfg.server.max_connections_per_address as usize,
        header_timeout: Duration::from_secs(state.cfg.server.header_timeout_secs.max(1)),
    };
    connections::serve(listener, router(state), limits, shutdown).await
}

/// The daemon's background work on the history: the daily retention purge, the sweep of
/// outbound calls that never reported, and the delivery of leads a previous run kept.
pub fn start_background(state: &Arc<AppState>) {
    state
        .calls
        .log()
        .record("the calls a previous run left live", |h| {
            let ids = h.interrupt_active()?;
            if !ids.is_empty() {
                tracing::warn!(
                    calls = ids.len(),
                    "calls left live by the previous run are marked interrupted"
                );
            }
            Ok(())
        });
    warm_up_the_llm(state);
    purge_history_daily(state);
    expire_pending_calls(state);
    sweep_calls(state);
    tool_effects::redeliver_stored(state.calls.log());
}

/// Has the LLM cache the prompt head now, so the first caller does not wait for it.
fn warm_up_the_llm(state: &Arc<AppState>) {
    let assistant = state.stream.assistant.clone();
    tokio::spawn(async move {
        if let Err(e) = assistant.warm_up().await {
            tracing::warn!("the prompt head could not be cached at start: {e:#}");
        }
    });
}

/// Every so often (a quarter of `voximplant.pending_timeout_secs`, between 1 s and a
/// minute), fails the outbound calls still pending after that timeout.
/// Every few seconds: the live calls idle or on too long are ended, and recorded so in the
/// history ([`Calls::sweep`]).
fn sweep_calls(state: &Arc<AppState>) {
    let calls = state.calls.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            calls.sweep();
        }
    });
}

fn expire_pending_calls(state: &Arc<AppState>) {
    let secs = state.cfg.voximplant.pending_timeout_secs;
    let log = state.calls.log().clone();
    if !log.has_history() || secs == 0 {
        return;
    }
    let every = Duration::from_secs((secs / 4).clamp(1, 60));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            log.record("the pending-call sweep", |h| {
                for call_id in h.expire_pending(secs)? {
                    tracing::warn!(
                        %call_id,
                        secs,
                        "outbound call: the scenario never reported; marked failed (no_report)"
                    );
                    log.metrics.call_ended(Transport::Stream, "no_report");
                }
                Ok(())
            });
        }
    });
}

/// Deletes calls past `history.retention_days` now and then once a day.
fn purge_history_daily(state: &Arc<AppState>) {
    let days = state.cfg.history.retention_days;
    let log = state.calls.log().clone();
    if !log.has_history() || days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            log.record("the retention purge", |h| {
                let n = h.purge(days)?;
                tracing::info!(calls = n, days, "call history purged");
                Ok(())
            });
        }
    });
}
