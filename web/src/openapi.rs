//! What the OpenAPI 3.1 document says besides its operations: info, tags, shared schemas and the
//! security scheme. The operations, the whole document (`/openapi.json`) and its HTML index
//! (`/docs`) are in `routes.rs`, which registers each handler with its path.

use utoipa::OpenApi;

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
        (name = "rewards", description = "Reward epochs: public reports and roots, my rewards and claim proofs"),
        (name = "slashing", description = "Proofs that a gateway signed two different envelopes with one sequence number, and their slashing on chain"),
        (name = "governance", description = "The parameters the community governs on chain (fees, tariffs, reward rates, bond and slashing rules, redemption) and their history"),
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
