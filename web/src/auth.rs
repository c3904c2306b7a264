//! Who is calling, and what they may do.
//!
//! - **Passwords** (dashboard logins) are stored as argon2id PHC strings.
//! - **API keys and session tokens** are 256-bit random secrets shown to their
//!   owner once. We store only their SHA-256: a fast hash is the right tool
//!   for high-entropy secrets (nothing to brute-force), and argon2 on every
//!   API request would cost more CPU than the request. The token carries a
//!   public id (`gsk_<id>_<secret>`) so lookup needs no scan.
//! - **Roles** decide resource families; ownership decides rows: a homeowner
//!   sees only their own participant's data ([`Principal::require_self_or`]).

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use gridshare_domain::ParticipantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A home: sees and trades for itself only.
    Homeowner,
    /// Commissions and checks the gateways they installed.
    Installer,
    /// The grid operator: feeder view and demand response.
    Operator,
    /// A trader using the API.
    Trader,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Homeowner => "homeowner",
            Self::Installer => "installer",
            Self::Operator => "operator",
            Self::Trader => "trader",
            Self::Admin => "admin",
        }
    }

    /// Parse a stored role name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Homeowner,
            Self::Installer,
            Self::Operator,
            Self::Trader,
            Self::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What an API key may do, beyond its owner's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read market data and own data.
    Read,
    /// Place, amend and cancel orders.
    Trade,
    /// Create and cancel demand-response events (operators).
    DemandResponse,
    /// Propose changes to the governed parameters (operators and administrators).
    Govern,
    /// Vote on proposals with the reward tokens of one's account (homeowners).
    Vote,
    /// List, make and revoke API keys. A dashboard session has it; a key has it only when made
    /// with it, so a leaked read-only or trading key cannot mint keys or revoke its siblings.
    Keys,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The participant acting.
    pub participant: ParticipantId,
    /// Their role.
    pub role: Role,
    /// Scopes; a dashboard session has every scope its role allows.
    pub scopes: Vec<Scope>,
    /// The API key the caller used (`None`: a dashboard session). Keys it makes are its
    /// children and die with it.
    pub key: Option<String>,
}

impl Principal {
    /// Allow only the given roles (admin always passes).
    pub fn require_role(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if self.role == Role::Admin || allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }

    /// Allow the owner of `target`'s data, or any of `roles` (admin always passes).
    pub fn require_self_or(&self, target: ParticipantId, roles: &[Role]) -> Result<(), ApiError> {
        if self.participant == target || self.role == Role::Admin || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not see {}'s data",
                self.participant, target
            )))
        }
    }

    /// Require a scope.
    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this key lacks the {scope:?} scope")))
        }
    }
}

/// A password could not be hashed (the parameters are fixed, so this is rare).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Hash a password with argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// True when `password` matches the stored PHC string.
///
/// argon2's working memory (~19 MiB at the default parameters) is kept per thread and reused:
/// allocated afresh for every check, the allocator kept it mapped per thread anyway, and a crowd
/// of logins grew the service by hundreds of MiB. Checks run on the few threads of
/// [`crate::guard::PasswordQueue`], so this holds one buffer per worker.
pub fn verify_password(password: &str, phc: &str) -> bool {
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(h) = PasswordHash::new(phc) else { return false };
    let (Ok(params), Some(salt), Some(expected)) = (argon2::Params::try_from(&h), h.salt, h.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = match h.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hashed = MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok()
        && out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A freshly made secret token: show `token` once, store `id` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Public id, for lookup and listing (`gsk_3f9a0c1d`).
    pub id: String,
    /// The whole secret token given to the user.
    pub token: String,
    /// SHA-256 of the token, hex; what is stored.
    pub hash: String,
}

/// Kinds of token, by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An API key (`gsk_`).
    ApiKey,
    /// A dashboard session (`gss_`).
    Session,
}

impl TokenKind {
    const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "gsk",
            Self::Session => "gss",
        }
    }
}

/// Make a new random token of `kind`.
pub fn new_token(kind: TokenKind) -> NewToken {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    OsRng.fill_bytes(&mut secret);
    let id = format!("{}_{}", kind.prefix(), hex::encode(id));
    let token = format!("{id}_{}", hex::encode(secret));
    let hash = token_hash(&token);
    NewToken { id, token, hash }
}

/// The public id of a token of `kind`, if it is well-formed.
pub fn token_id(kind: TokenKind, token: &str) -> Option<&str> {
    let (id, secret) = token.rsplit_once('_')?;
    let (prefix, id_hex) = id.split_once('_')?;
    let ok = prefix == kind.prefix()
        && id_hex.len() == 12
        && secret.len() == 64
        && id_hex.bytes().chain(secret.bytes()).all(|b| b.is_ascii_hexdigit());
    ok.then_some(id)
}

/// SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare a presented token with a stored hash in constant time.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    let a = token_hash(token);
    a.len() == stored_hash.len()
        && a.bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterx", &phc));
        assert!(!verify_password("anything", "not a phc string"));
        assert_ne!(phc, hash_password("correct horse battery").unwrap(), "salted");
        // a hash made with other parameters (an older default, another variant) is checked with
        // its own, after the reused memory was sized for the default's
        let params = argon2::Params::new(8 * 1024, 2, 1, Some(24)).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x10, params)
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse battery", &old), "{old}");
        assert!(!verify_password("correct horse batterx", &old));
        let truncated = &old[..old.len() - 4];
        assert!(!verify_password("correct horse battery", truncated));
    }

    #[test]
    fn tokens_parse_and_match() {
        let t = new_token(TokenKind::ApiKey);
        assert_eq!(token_id(TokenKind::ApiKey, &t.token), Some(t.id.as_str()));
        assert_eq!(token_id(TokenKind::Session, &t.token), None);
        assert!(token_matches(&t.token, &t.hash));
        let mut wrong = t.token.clone();
        wrong.pop();
        wrong.push('x');
        assert_eq!(token_id(TokenKind::ApiKey, &wrong), None);
        let last = if t.token.ends_with('0') { '1' } else { '0' };
        let tampered = format!("{}{last}", &t.token[..t.token.len() - 1]);
        assert!(!token_matches(&tampered, &t.hash));
        assert_ne!(new_token(TokenKind::ApiKey).token, t.token);
    }

    #[test]
    fn roles_and_ownership() {
        let home = Principal {
            participant: ParticipantId(1),
            role: Role::Homeowner,
            scopes: vec![Scope::Read],
            key: None,
        };
        assert!(home.require_self_or(ParticipantId(1), &[]).is_ok());
        let err = home.require_self_or(ParticipantId(2), &[]).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::FORBIDDEN);
        assert!(home.require_role(&[Role::Operator]).is_err());
        assert!(home.require_scope(Scope::Trade).is_err());
        let admin = Principal {
            participant: ParticipantId(9),
            role: Role::Admin,
            scopes: vec![],
            key: None,
        };
        assert!(admin.require_self_or(ParticipantId(2), &[]).is_ok());
        assert!(admin.require_role(&[Role::Operator]).is_ok());
        assert_eq!(Role::parse("installer"), Some(Role::Installer));
        assert_eq!(Role::parse("root"), None);
    }
}
