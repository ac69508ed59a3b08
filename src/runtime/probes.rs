//! The probe server: /metrics, /healthz and /readyz.

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;

use prometheus_client::registry::Registry;

#[derive(Clone)]
pub struct State {
    pub registry: Arc<Registry>,
    /// Set once every cache has synced.
    pub ready: Arc<tokio::sync::OnceCell<()>>,
}

pub fn router(state: State) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(
    AxumState(s): AxumState<State>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        {
            let mut out = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut out, &s.registry);
            out
        },
    )
}

async fn readyz(AxumState(s): AxumState<State>) -> (StatusCode, &'static str) {
    if s.ready.get().is_some() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}
