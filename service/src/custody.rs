//! The custodial accounts the service holds for participants without an EVM address of their
//! own (issue 20): one seed, made at the first start and kept in `data_dir/custody.key` (or the
//! file `chain.custody_key_file` names), readable by its owner only; each participant's key is
//! derived from it ([`gridshare_domain::accounts::Custody`]) and their address recorded once in
//! `participants.custody_address`, where settlement pays them and epochs reward them.
//!
//! Where the keys live and how they are backed up: the seed file is the only secret. Copy it,
//! once, to storage the service's host does not share (an offline medium or a secrets manager):
//! every custodial account, present and future, is derived from it, so one backup covers them
//! all; restored into a new data directory, the same accounts come back. Whoever reads it
//! controls every custodial account: the service refuses to start when the file may be read by
//! anyone but its owner. Losing it loses those accounts' funds and rewards. Instances of the
//! market sharing one database must share one seed (a second seed would derive other addresses,
//! and the unique index on `custody_address` keeps the first ones).

use std::path::PathBuf;

use gridshare_domain::ParticipantId;
use gridshare_domain::accounts::Custody;
use gridshare_storage::{Db, participants};

use crate::config::Config;
use crate::secrets::{Readers, load_or_make};

/// The seed file below the data directory, unless `chain.custody_key_file` names another.
pub const KEY_FILE: &str = "custody.key";

/// The seed file the configuration names.
pub fn key_path(cfg: &Config) -> PathBuf {
    cfg.chain
        .custody_key_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join(KEY_FILE))
}

/// The service's custody, from its seed file, made at the first call. Errors name the file.
pub fn load(cfg: &Config) -> Result<Custody, String> {
    let path = key_path(cfg);
    let (text, made) = load_or_make(&path, "custody seed", Readers::OwnerOnly)?;
    let custody = Custody::from_hex(&text).map_err(|e| format!("custody seed {}: {e}", path.display()))?;
    if made {
        tracing::warn!(
            path = %path.display(),
            "custody seed made: back this file up; it is the only key to the custodial accounts"
        );
    }
    Ok(custody)
}

/// Gives every participant without one their custodial account; returns who was given one.
pub async fn assign(db: &Db, custody: &Custody) -> Result<Vec<ParticipantId>, gridshare_storage::StorageError> {
    let assigned = participants::assign_custody(db, |p| custody.address_hex(p)).await?;
    if !assigned.is_empty() {
        tracing::info!(participants = ?assigned, "custodial accounts assigned");
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> Config {
        Config {
            data_dir: dir.to_owned(),
            ..Config::default()
        }
    }

    #[test]
    fn the_seed_is_made_once_for_its_owner_only_and_the_same_accounts_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let first = load(&cfg).unwrap();
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // a restart, or a restored backup in another data directory: the same accounts
        let again = load(&cfg).unwrap();
        assert_eq!(again.address(ParticipantId(7)), first.address(ParticipantId(7)));
        let restored = tempfile::tempdir().unwrap();
        let elsewhere = restored.path().join("backup.key");
        std::fs::copy(&path, &elsewhere).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let cfg2 = Config {
            chain: crate::config::Chain {
                custody_key_file: Some(elsewhere),
                ..crate::config::Chain::default()
            },
            ..config(restored.path())
        };
        assert_eq!(
            load(&cfg2).unwrap().address(ParticipantId(7)),
            first.address(ParticipantId(7))
        );
        // another data directory without the file: another seed
        let fresh = tempfile::tempdir().unwrap();
        assert_ne!(
            load(&config(fresh.path())).unwrap().address(ParticipantId(7)),
            first.address(ParticipantId(7))
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_seed_others_may_read_or_a_malformed_one_stops_the_start_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        load(&cfg).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&cfg).unwrap_err();
        assert!(
            err.contains("custody seed") && err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "0x1234").unwrap();
        let err = load(&cfg).unwrap_err();
        assert!(err.contains("custody seed") && err.contains("32 bytes"), "{err}");
        // nothing was overwritten: the malformed file is still there for the operator to mend
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0x1234");
    }
}
