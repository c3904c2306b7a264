//! The OpenAPI 3.1 document, generated from the handlers' annotations as
//! [`crate::routes::documented`] registers them and served at `/openapi.json`,
//! plus `/docs`: a plain HTML index of every operation rendered from that same
//! document (no JavaScript or CDN assets, so it works offline and on the
//! smallest gateway-side browser).

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::Json;
use axum::response::Html;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;

use crate::error::{ErrorBody, ErrorDetail};
use crate::health::HealthBody;

/// What the document says besides its operations: info, tags, shared schemas and the security
/// scheme. The operations come from [`crate::routes::documented`], which registers each handler
/// with its route.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "GridShare API", description = "Trade energy with your neighbours: markets, orders, trades, settlement, readings, demand response."),
    components(schemas(ErrorBody, ErrorDetail, HealthBody)),
    modifiers(&BearerKey),
    tags(
        (name = "operations", description = "Health, readiness, metrics and API description"),
        (name = "account", description = "Who a key acts for"),
        (name = "orders", description = "Order entry, my orders and trades"),
        (name = "markets", description = "Books, depth, trades and gate-closure results"),
        (name = "demand response", description = "Programs, events and reports (OpenADR 3 concepts); operators create"),
        (name = "readings", description = "Gateways and their readings as time buckets"),
        (name = "settlement", description = "Settlement batches on chain, proofs of trades, positions and their true-ups"),
        (name = "homes", description = "A home's trading preferences, confirmed by its gateways"),
    ),
)]
pub struct ApiDoc;

/// Declares the `api_key` security scheme: `Authorization: Bearer gsk_…`.
#[derive(Debug)]
struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key, `gsk_…`"))
                    .build(),
            ),
        );
    }
}

/// The whole document: [`ApiDoc`] with every operation the documented routes register.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| crate::routes::documented().into_openapi());
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
