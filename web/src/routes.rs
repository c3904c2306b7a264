//! The documented routes, listed once: each handler is registered with the path and method of
//! its `#[utoipa::path]` annotation, and the same registration adds its operation (and the
//! schemas it names) to the OpenAPI document. [`crate::app`] serves the router half;
//! [`crate::openapi::document`] is the document half. Routes outside the document (the
//! dashboard's pages and their static files, `/docs`) are plain axum routes in [`crate::app`].
//!
//! One `routes!(…)` per path: the handlers in one call share a path and differ in method.

use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::ApiDoc;
use crate::{AppState, account, api, balances, dr, feeder, health, openapi, readings, remote, settlement, ws};

/// Every documented operation, with the document's info, tags, shared schemas and security
/// scheme from [`ApiDoc`].
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // operations
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::metrics_text))
        .routes(routes!(openapi::openapi_json))
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
        // demand response and the grid
        .routes(routes!(dr::my_rewards))
        .routes(routes!(dr::programs, dr::create_program))
        .routes(routes!(dr::events, dr::create_event))
        .routes(routes!(dr::event, dr::cancel_event))
        .routes(routes!(feeder::feeder))
}
