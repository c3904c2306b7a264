//! [`SignedIn<R>`]: the page handlers' one way to say "a signed-in user with role `R`". Without
//! a login the visitor is sent to `/login`; with the wrong role they get a 403 page saying whose
//! the page is. Admins pass every role, as in the API.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use super::{error_page, session_of};
use crate::AppState;
use crate::auth::{Principal, Role};

/// The role a page is for, and what the 403 page tells anyone else.
pub trait PageRole: Send + Sync + 'static {
    /// The role allowed in (admins always are); `None`: any signed-in user.
    const ROLE: Option<Role>;
    /// The 403 page's title.
    const TITLE: &'static str;
    /// The 403 page's explanation.
    const MESSAGE: &'static str;
}

/// Any signed-in user (the way in, `GET /`).
#[derive(Debug)]
pub struct Anyone;

/// A household's pages.
#[derive(Debug)]
pub struct Homeowner;

/// The trading page.
#[derive(Debug)]
pub struct Trader;

/// The grid operator's feeder and demand-response pages.
#[derive(Debug)]
pub struct Operator;

/// The installer's gateway pages.
#[derive(Debug)]
pub struct Installer;

/// The admin's page.
#[derive(Debug)]
pub struct Admin;

impl PageRole for Admin {
    const ROLE: Option<Role> = Some(Role::Admin);
    const TITLE: &'static str = "Admins only";
    const MESSAGE: &'static str = "The administration page is for the service's admins.";
}

/// A visitor who may or may not be signed in (public pages show who is, when someone is).
#[derive(Debug)]
pub struct MaybeSignedIn(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(Principal::from_request_parts(parts, state).await.ok()))
    }
}

impl PageRole for Anyone {
    const ROLE: Option<Role> = None;
    const TITLE: &'static str = "";
    const MESSAGE: &'static str = "";
}

impl PageRole for Homeowner {
    const ROLE: Option<Role> = Some(Role::Homeowner);
    const TITLE: &'static str = "Not your home";
    const MESSAGE: &'static str = "This page belongs to a household; you can only see your own.";
}

impl PageRole for Trader {
    const ROLE: Option<Role> = Some(Role::Trader);
    const TITLE: &'static str = "Traders only";
    const MESSAGE: &'static str = "The trading page is for trader accounts. Homeowners trade through their gateway.";
}

impl PageRole for Operator {
    const ROLE: Option<Role> = Some(Role::Operator);
    const TITLE: &'static str = "Grid operators only";
    const MESSAGE: &'static str = "The feeder and demand-response pages are for the grid operator's accounts.";
}

impl PageRole for Installer {
    const ROLE: Option<Role> = Some(Role::Installer);
    const TITLE: &'static str = "Installers only";
    const MESSAGE: &'static str = "The gateway pages and remote checks are for installers' accounts.";
}

/// A signed-in user whose role is `R`'s (or an admin).
#[derive(Debug)]
pub struct SignedIn<R> {
    /// Who it is.
    pub who: Principal,
    role: PhantomData<R>,
}

impl<R: PageRole> FromRequestParts<AppState> for SignedIn<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // any failure to authenticate (none, expired, rate-limited) is a trip to the login page
        let who = Principal::from_request_parts(parts, state)
            .await
            .map_err(|_| Redirect::to("/login").into_response())?;
        if let Some(role) = R::ROLE
            && who.require_role(&[role]).is_err()
        {
            let session = session_of(state, &who).await;
            return Err(error_page(state, session, StatusCode::FORBIDDEN, R::TITLE, R::MESSAGE));
        }
        Ok(Self { who, role: PhantomData })
    }
}
