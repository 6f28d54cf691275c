//! Reading the server key of a `provision-server` data directory.

use std::path::Path;

use base64::Engine as _;
use swivel_provision::ServerKey;

use crate::error::BenchError;

/// Reads a server key file: 32 raw bytes, 64 hex digits, or 32 bytes in standard base64
/// (surrounding blanks ignored). Errors never show the file's content.
pub fn read_server_key(path: &Path) -> Result<ServerKey, BenchError> {
    let bytes = std::fs::read(path).map_err(|source| BenchError::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    parse_key(&bytes).ok_or_else(|| {
        BenchError::Invalid(format!(
            "{}: not a server key (expected 32 raw bytes, 64 hex digits or base64 of 32 bytes)",
            path.display()
        ))
    })
}

fn parse_key(bytes: &[u8]) -> Option<ServerKey> {
    if bytes.len() == 32 {
        return ServerKey::from_slice(bytes).ok();
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() == 64 {
        let mut out = [0u8; 32];
        if hex::decode_to_slice(text, &mut out).is_ok() {
            return Some(ServerKey::from_bytes(out));
        }
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    ServerKey::from_slice(&decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_raw_hex_and_base64() {
        let raw = [7u8; 32];
        let expect = ServerKey::from_bytes(raw);
        let hex_text = format!("{}\n", hex::encode(raw));
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        for input in [raw.to_vec(), hex_text.into_bytes(), b64.into_bytes()] {
            let key = parse_key(&input).expect("a key");
            assert_eq!(key.expose_bytes(), expect.expose_bytes());
        }
        assert!(parse_key(b"short").is_none());
        assert!(parse_key(&[1u8; 31]).is_none());
    }

    #[test]
    fn file_errors_do_not_show_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, "SECRETSECRET").unwrap();
        let e = read_server_key(&path).expect_err("refused").to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(read_server_key(&dir.path().join("missing")).is_err());
    }
}
