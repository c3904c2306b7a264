//! Which installer serves which home. An installer commissions gateways only for the homes
//! assigned to them; the homeowner assigns one (or ends the assignment) for their own home, an
//! administrator for any.

use axum::extract::State;
use axum::http::StatusCode;
use gridshare_domain::ParticipantId;
use gridshare_storage::{StorageError, installers, participants};

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path};

/// Checks that `who` may decide who serves `home` and that `installer` is an installer.
async fn check(state: &AppState, who: &Principal, home: u64, installer: u64) -> Result<(), ApiError> {
    who.require_scope(Scope::Trade)?;
    if !(who.role == Role::Admin || (who.role == Role::Homeowner && who.participant == ParticipantId(home))) {
        return Err(ApiError::forbidden(format!(
            "only home {home}'s owner or an administrator decides who installs there"
        )));
    }
    let db = state.db()?;
    match participants::get(db, ParticipantId(installer)).await {
        Ok(p) if p.role == "installer" => Ok(()),
        Ok(p) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_an_installer",
            format!("participant {installer} is a {}, not an installer", p.role),
        )),
        Err(StorageError::NotFound { .. }) => Err(ApiError::not_found(format!("no participant {installer}"))),
        Err(e) => Err(e.into()),
    }
}

/// Let an installer commission gateways for a home.
#[utoipa::path(put, path = "/api/v1/homes/{home}/installers/{installer}", tag = "homes", security(("api_key" = [])),
    params(("home" = u64, Path, description = "The home"), ("installer" = u64, Path, description = "The installer")),
    responses(
        (status = 204, description = "Assigned (or already was)"),
        (status = 403, description = "Not this home's owner nor an administrator", body = crate::error::ErrorBody),
        (status = 422, description = "Not an installer", body = crate::error::ErrorBody),
    ))]
pub async fn assign(
    State(state): State<AppState>,
    who: Principal,
    Path((home, installer)): Path<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &who, home, installer).await?;
    installers::assign(
        state.db()?,
        ParticipantId(installer),
        ParticipantId(home),
        who.participant,
        gridshare_market::wall_clock(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End an installer's assignment to a home (gateways they commissioned stay).
#[utoipa::path(delete, path = "/api/v1/homes/{home}/installers/{installer}", tag = "homes", security(("api_key" = [])),
    params(("home" = u64, Path, description = "The home"), ("installer" = u64, Path, description = "The installer")),
    responses(
        (status = 204, description = "No longer assigned"),
        (status = 403, description = "Not this home's owner nor an administrator", body = crate::error::ErrorBody),
        (status = 404, description = "Not assigned", body = crate::error::ErrorBody),
    ))]
pub async fn unassign(
    State(state): State<AppState>,
    who: Principal,
    Path((home, installer)): Path<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &who, home, installer).await?;
    match installers::unassign(state.db()?, ParticipantId(installer), ParticipantId(home)).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StorageError::NotFound { .. }) => Err(ApiError::not_found(format!(
            "installer {installer} is not assigned to home {home}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The homes an installer serves.
#[utoipa::path(get, path = "/api/v1/installers/me/homes", tag = "homes", security(("api_key" = [])),
    responses((status = 200, description = "Home ids, in order", body = Vec<u64>)))]
pub async fn my_homes(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<u64>>, ApiError> {
    who.require_scope(Scope::Read)?;
    who.require_role(&[Role::Installer])?;
    let homes = installers::homes_of(state.db()?, who.participant).await?;
    Ok(ApiJson(homes.into_iter().map(|h| h.0).collect()))
}
