//! The saved session: what a client needs to resume after a restart (endpoint, session id, token,
//! last known revision), in a JSON file only its owner can read.
//!
//! The token is a secret (spec SEC): the file is created with mode 0600 before anything is written to
//! it, replaced atomically (a temporary file in the same directory, fsync, rename, fsync of the
//! directory), and refused on load when group or others could read it. Nothing here prints the token.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stui_protocol::{SessionId, Token};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSession {
    pub endpoint: String,
    pub session_id: SessionId,
    /// `Debug` shows `Token(<redacted>)`.
    pub token: Token,
    pub revision: u64,
}

/// Writes `session` to `path` atomically, readable by its owner only.
pub fn save(path: &Path, session: &SavedSession) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("session");
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), crate::ids::new_request_id()));
    let result = (|| {
        // create_new + mode: the file is 0600 from its first byte, and never an existing file or link.
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(session).expect("a session serialises"))?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Why a saved session cannot be used.
#[derive(Debug)]
pub enum LoadError {
    Missing,
    Unprotected { mode: u32 },
    Unreadable(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing => write!(f, "no saved session"),
            LoadError::Unprotected { mode } => {
                write!(f, "the session file has mode {mode:o}: group or others may read the token; refusing it")
            }
            LoadError::Unreadable(why) => write!(f, "the session file cannot be read: {why}"),
        }
    }
}

pub fn load(path: &Path) -> Result<SavedSession, LoadError> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Unreadable(e.to_string())),
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(LoadError::Unprotected { mode });
    }
    let text = fs::read(path).map_err(|e| LoadError::Unreadable(e.to_string()))?;
    // serde_json's message may quote what it could not read; that could be the token, so it is dropped.
    serde_json::from_slice(&text)
        .map_err(|e| LoadError::Unreadable(format!("not a saved session ({:?})", e.classify())))
}

pub fn remove(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SavedSession {
        SavedSession {
            endpoint: "tcp://127.0.0.1:5555".into(),
            session_id: SessionId::new("Xb3kQ9vR2mLp7TzW5nYc1A").unwrap(),
            token: Token::new("q8Jf3LrT0vXy2NcW9aBd4KpZ7mQs1HuE6gYt5RiVo0A").unwrap(),
            revision: 3,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stui-session-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn saved_owner_only_replaced_atomically_and_loaded_back() {
        let dir = scratch("save");
        let path = dir.join("session.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        save(&path, &session()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&path).unwrap(), session());
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("session.json")], "a temporary file was left behind");
        assert!(!format!("{:?}", session()).contains("q8Jf3LrT"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = scratch("mode");
        let path = dir.join("session.json");
        save(&path, &session()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(load(&path), Err(LoadError::Unprotected { mode: 0o640 })));
        assert!(matches!(load(&dir.join("none.json")), Err(LoadError::Missing)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
