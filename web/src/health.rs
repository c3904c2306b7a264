//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: every
//! component that registered has said it is ready — storage open, broker
//! connected, engine recovered).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// Which components are ready.
#[derive(Debug, Default)]
pub struct Readiness {
    components: Mutex<BTreeMap<&'static str, bool>>,
}

impl Readiness {
    /// Register a component as not ready yet.
    pub fn register(&self, name: &'static str) {
        self.set(name, false);
    }

    /// Mark a component ready or not.
    pub fn set(&self, name: &'static str, ready: bool) {
        // A poisoned lock means a panic while holding it; the map is still valid.
        let mut map = self.components.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(name, ready);
    }

    fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        self.components.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Health or readiness status.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok` or `not_ready`.
    pub status: &'static str,
    /// Per component readiness (readiness only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<&'static str, bool>,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthBody)))]
pub async fn healthz() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok",
        components: BTreeMap::new(),
    })
}

/// Readiness: every component is ready to serve traffic.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = HealthBody, description = "all components ready"),
    (status = 503, body = HealthBody, description = "some component is not ready"),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthBody>) {
    let components = state.readiness.snapshot();
    let ready = components.values().all(|r| *r);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(HealthBody {
            status: if ready { "ok" } else { "not_ready" },
            components,
        }),
    )
}
