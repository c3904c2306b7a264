//! Secrets the service makes once and keeps in a file readable by its owner only: the market's
//! signing key (`market.key`) and the custody seed (`custody.key`).

use std::io::{Read, Write};
use std::path::Path;

/// Who may read a secret's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Its owner only: a file that others may read or write is refused by name (`chmod 600` it).
    OwnerOnly,
    /// Whatever the file's mode (files made by earlier versions are kept working).
    Any,
}

/// The text of the secret in `path` (64 hex digits), made there from 32 bytes of the system's
/// randomness at the first call (mode 0600, synced). Two processes making it at once agree on
/// the one written first. Errors name `what` and the file. Returns the text and whether it was
/// made now.
pub fn load_or_make(path: &Path, what: &str, readers: Readers) -> Result<(String, bool), String> {
    let read = |path: &Path| -> Result<String, String> {
        #[cfg(unix)]
        if readers == Readers::OwnerOnly {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("{what} {}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{what} {}: readable or writable by others (mode {:o}); it must be its owner's only: chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("{what} {}: {e}", path.display()))
    };
    if path.exists() {
        return read(path).map(|t| (t, false));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{what}: directory {}: {e}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("making the {what}: {e}"))?;
    let text = alloy::hex::encode(bytes);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("{what} {}: {e}", path.display()))?;
            Ok((text, true))
        }
        // made meanwhile by another start (the demo and the service share it): use that one
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path).map(|t| (t, false)),
        Err(e) => Err(format!("{what} {}: {e}", path.display())),
    }
}
