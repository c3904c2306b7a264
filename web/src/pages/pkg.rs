//! The dashboard's browser part (`GET /pkg/{file}`): the wasm and its JavaScript glue, built by
//! `scripts/build-ui.sh`; nothing else is served from disk.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Where the built browser part is, if anywhere: `GRIDSHARE_UI_DIR`, else `ui/pkg` in the source
/// tree (written by `scripts/build-ui.sh`).
pub fn default_pkg_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GRIDSHARE_UI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/pkg")));
    dir.join("gridshare_ui_bg.wasm").exists().then_some(dir)
}

/// `GET /pkg/{file}`: one of the two files of the browser part.
pub async fn pkg(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let content_type = match file.as_str() {
        "gridshare_ui.js" => "text/javascript; charset=utf-8",
        "gridshare_ui_bg.wasm" => "application/wasm",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let Some(dir) = &state.ui_pkg else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(dir.join(&file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
