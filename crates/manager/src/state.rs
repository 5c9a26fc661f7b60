//! The HTTP layer's state: the token service plus the parts only the HTTP layer needs,
//! each behind its own `Arc` and reached through [`FromRef`] or an accessor (the axum
//! `dependency-injection` example's shape). No field is public and nothing derefs: a handler
//! names the part it uses (`State<TokenService>`, `State<Arc<Auth>>`), and a background
//! task is handed only its own part when it is spawned.

use crate::auth::Auth;
use crate::config::Config;
use crate::health::Probes;
use crate::metrics::Metrics;
use crate::refresh::Refresher;
use crate::service::TokenService;
use axum::extract::FromRef;
use std::sync::Arc;

pub use crate::service::now_ms;

/// Everything the handlers share. Cheap to clone (a handful of `Arc`s).
#[derive(Clone)]
pub struct AppState {
    service: TokenService,
    auth: Arc<Auth>,
    probes: Arc<Probes>,
    refresher: Arc<Refresher>,
    metrics: Arc<Metrics>,
}

impl AppState {
    pub(crate) fn new(
        service: TokenService,
        auth: Auth,
        probes: Arc<Probes>,
        refresher: Arc<Refresher>,
        metrics: Arc<Metrics>,
    ) -> Self {
        AppState {
            service,
            auth: Arc::new(auth),
            probes,
            refresher,
            metrics,
        }
    }

    pub fn service(&self) -> &TokenService {
        &self.service
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn refresher(&self) -> &Arc<Refresher> {
        &self.refresher
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn config(&self) -> &Config {
        self.service.config()
    }
}

impl FromRef<AppState> for TokenService {
    fn from_ref(s: &AppState) -> TokenService {
        s.service.clone()
    }
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(s: &AppState) -> Arc<Auth> {
        s.auth.clone()
    }
}

impl FromRef<AppState> for Arc<Probes> {
    fn from_ref(s: &AppState) -> Arc<Probes> {
        s.probes.clone()
    }
}
