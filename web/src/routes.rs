//! The documented routes, listed once: each handler is registered with the path and method of
//! its `#[utoipa::path]` annotation, and the same registration adds its operation (and the
//! schemas it names) to the OpenAPI document. [`crate::app`] serves the router half;
//! [`document`] is the document half, served at `/openapi.json` and rendered as an HTML index at
//! `/docs` (no JavaScript or CDN assets, so it works offline). Routes outside the document (the
//! dashboard's pages and their static files, `/docs`) are plain axum routes in [`crate::app`].
//!
//! One `routes!(…)` per path: the handlers in one call share a path and differ in method.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::Json;
use axum::response::Html;
use utoipa::OpenApi as _;
use utoipa::openapi::path::Operation;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::ApiDoc;
use crate::{
    AppState, account, api, balances, dr, epochs, evidence, feeder, governance, health, installers, readings, remote,
    settlement, ws,
};

/// Every documented operation, with the document's info, tags, shared schemas and security
/// scheme from [`ApiDoc`].
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // operations
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::metrics_text))
        .routes(routes!(openapi_json))
        // account
        .routes(routes!(api::me))
        .routes(routes!(account::login, account::logout))
        .routes(routes!(account::list_keys, account::create_key))
        .routes(routes!(account::revoke_key))
        // orders
        .routes(routes!(api::my_orders, api::place_order))
        .routes(routes!(api::amend_order, api::cancel_order))
        .routes(routes!(api::my_trades))
        // markets
        .routes(routes!(api::books))
        .routes(routes!(api::depth))
        .routes(routes!(api::book_trades))
        .routes(routes!(api::results))
        .routes(routes!(ws::ws))
        // settlement
        .routes(routes!(settlement::proof))
        .routes(routes!(settlement::batches))
        .routes(routes!(settlement::positions))
        .routes(routes!(balances::balance))
        // readings and homes
        .routes(routes!(readings::list))
        .routes(routes!(readings::readings))
        .routes(routes!(remote::create_check))
        .routes(routes!(remote::get_check))
        .routes(routes!(remote::get_preferences, remote::put_preferences))
        .routes(routes!(installers::assign, installers::unassign))
        .routes(routes!(installers::my_homes))
        // demand response and the grid
        .routes(routes!(dr::my_rewards))
        .routes(routes!(dr::programs, dr::create_program))
        .routes(routes!(dr::events, dr::create_event))
        .routes(routes!(dr::event, dr::cancel_event))
        .routes(routes!(feeder::feeder))
        // reward epochs
        .routes(routes!(epochs::epochs))
        .routes(routes!(epochs::my_epoch_rewards))
        .routes(routes!(epochs::epoch_report))
        .routes(routes!(epochs::my_proof))
        // slashing
        .routes(routes!(evidence::equivocations))
        .routes(routes!(governance::governed_parameters))
        .routes(routes!(governance::proposals, governance::propose))
        .routes(routes!(governance::vote))
        .routes(routes!(governance::my_votes))
}

/// The whole document: [`ApiDoc`] with every operation the documented routes register.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| documented().into_openapi());
    &DOC
}

/// This document, as JSON.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document().clone())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A readable index of the API, rendered from the OpenAPI document.
pub async fn docs() -> Html<String> {
    let doc = document();
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops: [(&str, &Option<Operation>); 5] = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                let summary = op.summary.as_deref().or(op.description.as_deref()).unwrap_or("");
                let tag = op
                    .tags
                    .as_ref()
                    .and_then(|t| t.first())
                    .map(String::as_str)
                    .unwrap_or("");
                // Writing to a String cannot fail.
                let _ = writeln!(
                    rows,
                    "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(path),
                    escape(tag),
                    escape(summary)
                );
            }
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>GridShare API</title><style>body{{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem}}\
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}}</style></head>\
<body><h1>GridShare API {}</h1><p>The machine-readable description is at <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1). \
Errors always have the shape <code>{{\"error\":{{\"code\":\"…\",\"message\":\"…\"}}}}</code>.</p>\
<table><thead><tr><th>method</th><th>path</th><th>area</th><th>what it does</th></tr></thead><tbody>{rows}</tbody></table></body></html>",
        escape(&doc.info.version)
    ))
}
