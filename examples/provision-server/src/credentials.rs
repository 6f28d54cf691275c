//! The console password and the API token. Only a hash of each is stored, in the
//! [`SettingsStore`]: an Argon2id PHC string for the password, an HMAC-SHA256 under a key
//! derived from the server key for the token (a random 256-bit token needs no slow hash).
//! Both are compared in constant time.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use swivel_provision::{ServerKey, SettingsStore};

use crate::error::AppError;

const PASSWORD_KEY: &str = "console/password";
const TOKEN_KEY: &str = "api/token";

/// Shortest console password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Shortest API token [`Credentials::set_api_token`] accepts (a made token has 43).
pub const MIN_TOKEN_CHARS: usize = 32;

/// `n` random bytes from the operating system, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    ChaCha20Rng::from_os_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks and stores credentials.
#[derive(Clone)]
pub struct Credentials {
    settings: Arc<dyn SettingsStore>,
    token_key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([REDACTED])")
    }
}

impl Credentials {
    /// Credentials kept in `settings`; the token HMAC key is derived from `key`.
    pub fn new(key: &ServerKey, settings: Arc<dyn SettingsStore>) -> Self {
        Self {
            settings,
            token_key: Arc::new(key.derive("provision-server/api-token", &[])),
        }
    }

    /// Whether a console password is set.
    pub async fn has_password(&self) -> Result<bool, AppError> {
        Ok(self.settings.get_setting(PASSWORD_KEY).await?.is_some())
    }

    /// Sets the console password (at least [`MIN_PASSWORD_CHARS`] characters).
    pub async fn set_password(&self, password: &SecretString) -> Result<(), AppError> {
        let pw = password.expose_secret();
        if pw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AppError::BadRequest(format!(
                "the console password must have at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let mut salt = [0u8; 16];
        ChaCha20Rng::from_os_rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(e.to_string()))?;
        let hash = Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))?
            .to_string();
        self.settings.put_setting(PASSWORD_KEY, &hash).await?;
        Ok(())
    }

    /// Whether `password` is the console password (false when none is set).
    pub async fn check_password(&self, password: &str) -> Result<bool, AppError> {
        let Some(stored) = self.settings.get_setting(PASSWORD_KEY).await? else {
            return Ok(false);
        };
        let password = password.to_owned();
        // Argon2 is slow by design: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let Ok(hash) = PasswordHash::new(&stored) else {
                return false;
            };
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
    }

    fn token_mac(&self, token: &str) -> String {
        let key = ServerKey::from_bytes(*self.token_key);
        hex::encode(key.derive("api-token", &[token.as_bytes()]))
    }

    /// Makes a new API token, stores its HMAC (replacing any older token) and returns it.
    /// It is shown once: only the HMAC is kept.
    pub async fn new_api_token(&self) -> Result<SecretString, AppError> {
        let token = random_token(32);
        self.settings
            .put_setting(TOKEN_KEY, &self.token_mac(&token))
            .await?;
        Ok(token.into())
    }

    /// Makes `token` the API token (replacing any older one): stores its HMAC. At least
    /// [`MIN_TOKEN_CHARS`] characters, without blanks or control characters.
    pub async fn set_api_token(&self, token: &SecretString) -> Result<(), AppError> {
        let t = token.expose_secret();
        if t.chars().count() < MIN_TOKEN_CHARS
            || t.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AppError::Setup(format!(
                "an API token must be at least {MIN_TOKEN_CHARS} characters without blanks"
            )));
        }
        self.settings
            .put_setting(TOKEN_KEY, &self.token_mac(t))
            .await?;
        Ok(())
    }

    /// Whether `token` is the API token (false when none is set).
    pub async fn check_api_token(&self, token: &str) -> Result<bool, AppError> {
        let Some(stored) = self.settings.get_setting(TOKEN_KEY).await? else {
            return Ok(false);
        };
        let presented = self.token_mac(token);
        Ok(presented.as_bytes().ct_eq(stored.trim().as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::MemorySettings;

    #[tokio::test]
    async fn password_and_token_are_stored_hashed() {
        let settings = Arc::new(MemorySettings::new());
        let c = Credentials::new(&ServerKey::generate(), settings.clone());
        assert!(!c.check_password("anything at all").await.unwrap());
        assert!(c.set_password(&SecretString::from("short")).await.is_err());
        c.set_password(&SecretString::from("correct horse battery"))
            .await
            .unwrap();
        let stored = settings.get_setting(PASSWORD_KEY).await.unwrap().unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("horse"));
        assert!(c.check_password("correct horse battery").await.unwrap());
        assert!(!c.check_password("correct horse battery!").await.unwrap());

        assert!(!c.check_api_token("x").await.unwrap());
        let token = c.new_api_token().await.unwrap();
        let stored = settings.get_setting(TOKEN_KEY).await.unwrap().unwrap();
        assert!(!stored.contains(token.expose_secret()));
        assert!(c.check_api_token(token.expose_secret()).await.unwrap());
        assert!(!c.check_api_token("x").await.unwrap());
        let newer = c.new_api_token().await.unwrap();
        assert!(
            !c.check_api_token(token.expose_secret()).await.unwrap(),
            "old token revoked"
        );
        assert!(c.check_api_token(newer.expose_secret()).await.unwrap());
        // A token given from outside replaces it; a short or blank one is refused.
        let given = SecretString::from("g".repeat(MIN_TOKEN_CHARS));
        c.set_api_token(&given).await.unwrap();
        assert!(c.check_api_token(given.expose_secret()).await.unwrap());
        assert!(!c.check_api_token(newer.expose_secret()).await.unwrap());
        for bad in ["short", &format!("{} x", "g".repeat(40))] {
            let e = c
                .set_api_token(&SecretString::from(bad.to_owned()))
                .await
                .unwrap_err();
            assert!(!e.to_string().contains(bad), "{e}");
        }
        assert!(c.check_api_token(given.expose_secret()).await.unwrap());
    }
}
