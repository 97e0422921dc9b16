//! The HTTP API (axum): routes, shared state, auth, serving and graceful shutdown.

pub mod audio_store;
pub mod auth;
pub mod error;
mod events;
mod health;
pub mod process_audio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::calls::Calls;
use crate::config::Config;
use crate::engines::Engines;
use audio_store::AudioStore;
use error::ApiError;

/// Everything a request handler can reach.
pub struct AppState {
    pub cfg: Config,
    pub engines: Arc<Engines>,
    pub calls: Calls,
    pub audio: AudioStore,
    pub public_url: String,
    pub started: Instant,
}

impl AppState {
    pub fn new(cfg: Config, engines: Arc<Engines>, bound: SocketAddr) -> Self {
        Self {
            public_url: cfg.public_url(bound),
            calls: Calls::new(Duration::from_secs(cfg.calls.idle_timeout_secs)),
            audio: AudioStore::new(Duration::from_secs(cfg.calls.reply_audio_ttl_secs)),
            engines,
            cfg,
            started: Instant::now(),
        }
    }
}

/// The router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/voximplant/process_audio", post(process_audio::handle))
        .route("/voximplant/events", post(events::handle))
        .route("/voximplant/calls/{call_id}", get(events::show))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/health", get(health::handle))
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
        .with_state(state)
}

/// Binds the configured address, loads nothing (engines come in), serves until SIGINT/SIGTERM.
pub async fn serve(cfg: Config, engines: Arc<Engines>) -> Result<()> {
    let addr = cfg.bind_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    if cfg.server.token.is_empty() {
        tracing::warn!("server.token is empty: the API is open to anyone who can reach {bound}");
    }
    let state = Arc::new(AppState::new(cfg, engines, bound));
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("voxd stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("cannot install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
    crate::notify::notify("STOPPING=1");
}
