//! Operations routes: `/metrics`, `/healthz`, `/readyz`, `/api/openapi.json`.
//!
//! These are unauthenticated, like any load balancer's probes: they reveal counts and the
//! API's shape, never a token or a name. `/readyz` pings the store, so an orchestrator stops
//! sending traffic to a manager whose store is gone.

use crate::service::TokenService;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

pub async fn metrics(State(svc): State<TokenService>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&svc),
    )
}

fn render_metrics(svc: &TokenService) -> String {
    let now = crate::service::now_ms();
    let per_token = svc.config().metrics.per_token;
    let scrape = crate::metrics::Scrape {
        pools: svc
            .pools()
            .iter()
            .map(|h| h.gauges(now, per_token))
            .collect(),
        per_token,
    };
    let waiting: Vec<_> = svc.pools().iter().map(|h| h.waiter_counts()).collect();
    let dropped = svc.events_dropped();
    crate::metrics::render(svc.metrics(), &scrape, |out| {
        svc.coordinator().render_metrics(out);
        crate::metrics::render_trust(out, &waiting, dropped);
    })
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(svc): State<TokenService>) -> (StatusCode, Json<Value>) {
    match svc.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "tokens": svc.token_count() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "error": { "code": "not_ready", "message": "the token store is unavailable" } }),
                ),
            )
        }
    }
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
