//! The device's state file (JSON): server, user, provision Id, strings, next index.
//! Secret: written with mode 0600, atomically.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// What the device remembers.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceState {
    /// Base URL of the server (`http://host:port`).
    pub server: String,
    /// The AgentXML endpoint.
    pub agent_url: String,
    /// The user.
    pub user: String,
    /// The provision Id (secret).
    pub provision_id: String,
    /// The security strings as on the wire, joined by `;` (secret); none before the first
    /// download.
    pub strings: Option<String>,
    /// The index of the next one-time code (1 to 99).
    pub next_index: u8,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

fn state_err(path: &Path, message: impl std::fmt::Display) -> ClientError {
    ClientError::State {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl DeviceState {
    /// Reads the state file.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClientError::NotProvisioned(format!(
                    "no state file {}",
                    path.display()
                )));
            }
            Err(e) => return Err(state_err(path, e)),
        };
        serde_json::from_str(&text).map_err(|e| state_err(path, e))
    }

    /// Writes the state file (mode 0600, through a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| state_err(path, e))?;
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(|e| state_err(&tmp, e))?;
        file.write_all(json.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| state_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| state_err(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_private_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let s = DeviceState {
            server: "http://127.0.0.1:8080".into(),
            agent_url: "http://127.0.0.1:8080/pinsafe/AgentXML".into(),
            user: "alice".into(),
            provision_id: "00112233445566778899aabbccddeeff".into(),
            strings: Some("0123456789".into()),
            next_index: 1,
        };
        s.save(&path).unwrap();
        assert_eq!(DeviceState::load(&path).unwrap(), s);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("0011223344") && !dbg.contains("0123456789"));
        assert!(matches!(
            DeviceState::load(&dir.path().join("none")),
            Err(ClientError::NotProvisioned(_))
        ));
    }
}
