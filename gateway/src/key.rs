//! The gateway's signing key on disk: made once when the gateway is commissioned
//! (`gateway keygen`), read at every start (`gateway run`). The file holds the secp256k1 private
//! key as 64 hex digits and is readable by its owner only.

use std::path::{Path, PathBuf};

use gridshare_domain::envelope::GatewayKey;

/// A key file that cannot be read, made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a usable private key.
    #[error("key file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        source: gridshare_domain::envelope::KeyError,
    },
    /// A new key file could not be written (one that exists already is never replaced).
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The system gave no randomness to make a key from.
    #[error("no randomness: {0}")]
    Randomness(getrandom::Error),
}

// The service's demo sets a home up in a function whose errors are text, and reads each home's
// key with `?`.
impl From<KeyError> for String {
    fn from(e: KeyError) -> Self {
        e.to_string()
    }
}

/// Reads the gateway's private key (64 hex digits) from `path`.
pub fn load_key(path: &Path) -> Result<GatewayKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    GatewayKey::from_hex(text.trim()).map_err(|source| KeyError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Makes a new key and writes it to `out`, which must not exist yet (a commissioned gateway's
/// key is never overwritten by mistake).
pub fn generate(out: &Path) -> Result<GatewayKey, KeyError> {
    let mut bytes = [0u8; 32];
    let key = loop {
        getrandom::fill(&mut bytes).map_err(KeyError::Randomness)?;
        // the few values that are not a valid secp256k1 scalar: draw again
        if let Ok(k) = GatewayKey::from_bytes(&bytes) {
            break k;
        }
    };
    let write = |source| KeyError::Write {
        path: out.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(write)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write)?;
    }
    use std::io::Write;
    writeln!(f, "{}", key.to_hex()).map_err(write)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_key_loads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.hex");
        let key = generate(&path).unwrap();
        assert_eq!(load_key(&path).unwrap().to_hex(), key.to_hex());
        let err = generate(&path).unwrap_err().to_string();
        assert!(err.contains("key.hex"), "{err}");
        std::fs::write(&path, "not hex\n").unwrap();
        let err = load_key(&path).unwrap_err().to_string();
        assert!(err.starts_with("key file ") && err.contains("key.hex"), "{err}");
        let err = load_key(&dir.path().join("missing.hex")).unwrap_err().to_string();
        assert!(err.contains("missing.hex"), "{err}");
    }
}
