//! PINs, stored encrypted: XChaCha20-Poly1305 under a key derived from the server key
//! (`ServerKey::derive("provision-server/pin", ..)`), a random 192-bit nonce per value, and
//! the username as associated data (a ciphertext moved to another user does not decrypt).
//! Kept in the [`SettingsStore`] under `pin/<username>` so that every instance sharing the
//! database agrees. The prefix fits the room the core keeps in front of a username
//! ([`USERNAME_KEY_PREFIX_BYTES`], checked at compile time), so the key fits the store's
//! limit whatever the username.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use swivel_provision::{
    Pin, ServerKey, SettingsStore, StoreError, USERNAME_KEY_PREFIX_BYTES, Username, username_key,
};

use crate::error::AppError;

const NONCE_LEN: usize = 24;

/// Encrypts, stores and reads users' PINs.
#[derive(Clone)]
pub struct PinVault {
    cipher: Arc<XChaCha20Poly1305>,
    settings: Arc<dyn SettingsStore>,
    /// A sealed PIN under a name no user can have, decrypted for a user without a PIN so
    /// that both take the same work.
    dummy: Arc<Vec<u8>>,
}

/// The name the dummy PIN is sealed under (a username cannot contain `/`).
const DUMMY_AAD: &[u8] = b"provision-server/no-such-user";

impl std::fmt::Debug for PinVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinVault([REDACTED])")
    }
}

/// The prefix of a PIN's setting key.
const PREFIX: &str = "pin/";
const _: () = assert!(PREFIX.len() <= USERNAME_KEY_PREFIX_BYTES);

fn setting_key(user: &Username) -> String {
    username_key(PREFIX, user)
}

/// A user's PIN as stored (sealed), or its absence: what [`PinVault::stored`] read, for
/// [`PinVault::restore`] to put back.
pub struct StoredPin(Option<String>);

impl std::fmt::Debug for StoredPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredPin([REDACTED])")
    }
}

impl PinVault {
    /// A vault keyed from the server key.
    pub fn new(key: &ServerKey, settings: Arc<dyn SettingsStore>) -> Self {
        let derived = key.derive("provision-server/pin", &[]);
        let cipher = XChaCha20Poly1305::new((&derived).into());
        let mut nonce = [0u8; NONCE_LEN];
        ChaCha20Rng::from_os_rng().fill_bytes(&mut nonce);
        let mut dummy = nonce.to_vec();
        dummy.extend(
            cipher
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: b"0000000000",
                        aad: DUMMY_AAD,
                    },
                )
                .unwrap_or_default(),
        );
        Self {
            cipher: Arc::new(cipher),
            settings,
            dummy: Arc::new(dummy),
        }
    }

    /// The user's PIN and `true`; for a user without a usable PIN, a dummy PIN and `false`,
    /// after the same work (a store read, a hex decode and a decryption), so that the time
    /// does not tell the two apart.
    pub async fn get_or_dummy(&self, user: &Username) -> Result<(Pin, bool), StoreError> {
        if let Some(pin) = self.get(user).await? {
            return Ok((pin, true));
        }
        let encoded = hex::encode(self.dummy.as_slice());
        let bytes = hex::decode(encoded).unwrap_or_default();
        let (nonce, sealed) = bytes.split_at(NONCE_LEN.min(bytes.len()));
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: DUMMY_AAD,
                },
            )
            .unwrap_or_default();
        let pin = std::str::from_utf8(&plain)
            .ok()
            .and_then(|s| Pin::parse(s).ok());
        match pin {
            Some(pin) => Ok((pin, false)),
            None => Pin::parse("0000000000")
                .map(|p| (p, false))
                .map_err(|_| StoreError::backend("the dummy PIN does not parse")),
        }
    }

    /// Stores the user's PIN (replacing any).
    pub async fn set(&self, user: &Username, pin: &Pin) -> Result<(), AppError> {
        let mut nonce = [0u8; NONCE_LEN];
        ChaCha20Rng::from_os_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: pin.expose().as_bytes(),
                    aad: user.as_str().as_bytes(),
                },
            )
            .map_err(|_| AppError::Internal("PIN encryption failed".into()))?;
        let mut value = nonce.to_vec();
        value.extend_from_slice(&sealed);
        self.settings
            .put_setting(&setting_key(user), &hex::encode(value))
            .await?;
        Ok(())
    }

    /// The user's PIN, if one is stored and decrypts under this server key.
    pub async fn get(&self, user: &Username) -> Result<Option<Pin>, StoreError> {
        let Some(value) = self.settings.get_setting(&setting_key(user)).await? else {
            return Ok(None);
        };
        let Ok(bytes) = hex::decode(value.trim()) else {
            tracing::warn!(user = %user, "stored PIN is malformed");
            return Ok(None);
        };
        if bytes.len() <= NONCE_LEN {
            return Ok(None);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let Ok(plain) = self.cipher.decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: user.as_str().as_bytes(),
            },
        ) else {
            tracing::warn!(user = %user, "stored PIN does not decrypt under this server key");
            return Ok(None);
        };
        Ok(std::str::from_utf8(&plain)
            .ok()
            .and_then(|s| Pin::parse(s).ok()))
    }

    /// The user's PIN as stored (sealed, not decrypted), to put back with
    /// [`PinVault::restore`] when a change that went with it fails.
    pub async fn stored(&self, user: &Username) -> Result<StoredPin, StoreError> {
        Ok(StoredPin(
            self.settings.get_setting(&setting_key(user)).await?,
        ))
    }

    /// Puts back what [`PinVault::stored`] read: the sealed PIN, or no PIN.
    pub async fn restore(&self, user: &Username, stored: StoredPin) -> Result<(), StoreError> {
        let key = setting_key(user);
        match stored.0 {
            Some(value) => self.settings.put_setting(&key, &value).await,
            None => self.settings.delete_setting(&key).await.map(|_| ()),
        }
    }

    /// Removes the user's PIN. Returns whether there was one.
    pub async fn remove(&self, user: &Username) -> Result<bool, StoreError> {
        self.settings.delete_setting(&setting_key(user)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::MemorySettings;

    #[tokio::test]
    async fn pins_are_encrypted_and_bound_to_the_user() {
        let settings = Arc::new(MemorySettings::new());
        let vault = PinVault::new(&ServerKey::generate(), settings.clone());
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        vault
            .set(&alice, &Pin::parse("9132640587").unwrap())
            .await
            .unwrap();
        let stored = settings.get_setting("pin/alice").await.unwrap().unwrap();
        // Ten digits: a four-digit PIN turns up by chance in random hex now and then.
        assert!(!stored.contains("9132640587"));
        assert_eq!(
            vault.get(&alice).await.unwrap().unwrap().expose(),
            "9132640587"
        );
        // Moved to another user, it does not decrypt.
        settings.put_setting("pin/bob", &stored).await.unwrap();
        assert!(vault.get(&bob).await.unwrap().is_none());
        // Under another key, it does not decrypt.
        let other = PinVault::new(&ServerKey::generate(), settings.clone());
        assert!(other.get(&alice).await.unwrap().is_none());
        let (pin, real) = vault.get_or_dummy(&alice).await.unwrap();
        assert!(real && pin.expose() == "9132640587");
        assert!(vault.remove(&alice).await.unwrap());
        assert!(vault.get(&alice).await.unwrap().is_none());
        let (_, real) = vault.get_or_dummy(&alice).await.unwrap();
        assert!(!real, "no PIN: a dummy, marked as such");
    }
}
