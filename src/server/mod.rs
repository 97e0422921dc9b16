//! The HTTP API (axum): routes, shared state, serving until a signal, then draining.

pub mod audio_store;
pub mod auth;
mod call_history;
pub mod drain;
pub mod error;
mod events;
mod health;
mod metrics;
mod place_call;
pub mod process_audio;
pub(crate) mod tools;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::calls::{CallSession, Calls};
use crate::config::Config;
use crate::engines::Engines;
use crate::history::History;
use crate::metrics::{Metrics, Transport};
use crate::outbound::ManagementApi;
use audio_store::AudioStore;
use drain::{Drain, Signals};
use error::ApiError;

/// Everything a request handler can reach.
pub struct AppState {
    pub cfg: Config,
    pub engines: Arc<Engines>,
    pub calls: Calls,
    pub audio: AudioStore,
    pub public_url: String,
    pub started: Instant,
    pub metrics: Arc<Metrics>,
    pub drain: Drain,
    /// The greeting for recording-mode calls, synthesized on first use.
    pub greeting_wav: tokio::sync::OnceCell<Vec<u8>>,
    /// The call history database (None when `history.database` is empty).
    pub history: Option<History>,
    /// Voximplant's Management API for outbound calls (None until `[voximplant]` is set).
    pub outbound: Option<ManagementApi>,
}

impl AppState {
    /// The state, with the call history opened (and migrated).
    pub fn new(cfg: Config, engines: Arc<Engines>, bound: SocketAddr) -> Result<Self> {
        let history = if cfg.history.database.as_os_str().is_empty() {
            None
        } else {
            Some(History::open(&cfg.history.database)?)
        };
        let outbound = ManagementApi::from_config(&cfg.voximplant)?;
        if let Some(api) = &outbound {
            tracing::info!("outbound calls: Voximplant {}", api.describe());
        }
        let metrics = Arc::new(Metrics::default());
        for (engine, secs) in engines.load_secs {
            metrics.model_loaded(engine, secs);
        }
        Ok(Self {
            history,
            outbound,
            public_url: cfg.public_url(bound),
            calls: Calls::new(
                Duration::from_secs(cfg.calls.idle_timeout_secs),
                metrics.clone(),
            ),
            metrics,
            drain: Drain::default(),
            audio: AudioStore::new(Duration::from_secs(cfg.calls.reply_audio_ttl_secs)),
            engines,
            cfg,
            started: Instant::now(),
            greeting_wav: tokio::sync::OnceCell::new(),
        })
    }

    /// The call's live session, created if it is new, with the call recorded as started in
    /// the history: every transport opens its calls here.
    pub fn open_call(
        &self,
        call_id: &str,
        transport: Transport,
    ) -> Arc<tokio::sync::Mutex<CallSession>> {
        let session = self.calls.session(call_id, transport);
        self.record("the call start", |h| h.call_started(call_id, transport));
        session
    }

    /// Writes to the call history, if there is one. A failed write is logged and the call
    /// goes on: the caller must not be dropped because a disk is full.
    pub fn record(&self, what: &str, write: impl FnOnce(&History) -> Result<()>) {
        if let Some(h) = &self.history {
            if let Err(e) = write(h) {
                tracing::error!("call history: cannot record {what}: {e:#}");
            }
        }
    }
}

/// The router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/voximplant/process_audio", post(process_audio::handle))
        .route("/voximplant/events", post(events::handle))
        .route("/voximplant/calls/{call_id}", get(events::show))
        .route("/calls", get(call_history::list).post(place_call::handle))
        .route("/calls/{call_id}", get(call_history::show))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/health", get(health::handle))
        .route("/metrics", get(metrics::handle))
        .route("/audio/{file}", get(process_audio::serve_audio))
        .route("/voximplant/stream", get(crate::stream::handle))
        .merge(protected)
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
            state.clone(),
            error::count,
        ))
        .with_state(state)
}

/// Binds the configured address, loads nothing (engines come in), serves until SIGTERM or
/// SIGINT, then drains (see [`drain`]).
pub async fn serve(cfg: Config, engines: Arc<Engines>) -> Result<()> {
    let addr = cfg.bind_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    if cfg.server.token.is_empty() {
        tracing::warn!("server.token is empty: the API is open to anyone who can reach {bound}");
    }
    let state = Arc::new(AppState::new(cfg, engines, bound)?);
    start_background(&state);
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    tracing::info!(%bound, public_url = %state.public_url, "voxd listening");
    crate::notify::notify(&format!("READY=1\nSTATUS=serving on {bound}"));
    if let Some(every) = crate::notify::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::notify::notify("WATCHDOG=1");
            }
        });
    }
    let mut server = tokio::spawn(
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(state.drain.clone().stopped())
            .into_future(),
    );
    tokio::select! {
        result = &mut server => return Ok(result??),
        sig = signals.recv() => tracing::info!("{sig}: shutting down"),
    }
    drain::run(&state, &mut signals, server).await;
    tracing::info!("voxd stopped");
    Ok(())
}

/// The daemon's background work on the history: the daily retention purge, the sweep of
/// outbound calls that never reported, and the delivery of leads a previous run kept.
pub fn start_background(state: &Arc<AppState>) {
    purge_history_daily(state);
    expire_pending_calls(state);
    tools::redeliver_stored(state);
}

/// Every so often (a quarter of `voximplant.pending_timeout_secs`, between 1 s and a
/// minute), fails the outbound calls still pending after that timeout.
fn expire_pending_calls(state: &Arc<AppState>) {
    let secs = state.cfg.voximplant.pending_timeout_secs;
    if state.history.is_none() || secs == 0 {
        return;
    }
    let state = state.clone();
    let every = Duration::from_secs((secs / 4).clamp(1, 60));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            state.record("the pending-call sweep", |h| {
                for call_id in h.expire_pending(secs)? {
                    tracing::warn!(
                        %call_id,
                        secs,
                        "outbound call: the scenario never reported; marked failed (no_report)"
                    );
                    state.metrics.call_ended(Transport::Stream, "no_report");
                }
                Ok(())
            });
        }
    });
}

/// Deletes calls past `history.retention_days` now and then once a day.
fn purge_history_daily(state: &Arc<AppState>) {
    let days = state.cfg.history.retention_days;
    if state.history.is_none() || days == 0 {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            state.record("the retention purge", |h| {
                let n = h.purge(days)?;
                tracing::info!(calls = n, days, "call history purged");
                Ok(())
            });
        }
    });
}
