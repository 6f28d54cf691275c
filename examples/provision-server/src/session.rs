//! Console sessions, kept in the store's settings, so that every instance of a cluster
//! serves every logged-in administrator and a restart logs nobody out: a random 128-bit id
//! in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/admin`, `Secure` under TLS), a CSRF
//! token per session that every console form carries, and a fresh id at login.
//!
//! The store holds, under `console/session/<HMAC of the id>`, the CSRF token, whether the
//! password was given and when the session began; never the id itself, so a reader of the
//! database cannot take a session over. A session ends [`LIFETIME`] after it began (its
//! entry is removed when it is next presented) or at logout.
//!
//! Every session carries the *generation* it began in (a random value under
//! `console/session-generation`); [`Sessions::end_all`] (a changed console password) starts
//! a new one, which ends every session on every instance.
//!
//! Nothing is stored before the console password is given: the login form's CSRF token is
//! a signed double-submit token, an HMAC (under a key derived from the server key, the same
//! on every instance) of a random nonce that the browser holds in the `plogin` cookie.
//! Anonymous visitors cost nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use swivel_provision::{ServerKey, SettingsStore};

use crate::credentials::random_token;
use crate::error::AppError;

/// Where sessions are kept in the settings store.
const PREFIX: &str = "console/session/";
/// The current session generation ([`Sessions::end_all`]); absent until the first change.
const GENERATION_KEY: &str = "console/session-generation";

/// The cookie's name.
pub const COOKIE: &str = "psid";
/// The login form's nonce cookie.
pub const LOGIN_COOKIE: &str = "plogin";
/// A session ends this long after it was created.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// A login form's nonce cookie lasts this long.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(3600);

/// One session.
#[derive(Clone)]
pub struct Session {
    /// The session id (the cookie's value).
    pub id: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Whether the console password was given.
    pub authenticated: bool,
}

/// What the store keeps of a session.
#[derive(Serialize, Deserialize)]
struct Stored {
    csrf: String,
    authenticated: bool,
    /// Unix seconds.
    created: u64,
    /// The generation the session began in (empty: the first).
    #[serde(default)]
    generation: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        self.csrf.as_bytes().ct_eq(token.as_bytes()).into()
    }
}

/// The sessions (in the settings store), and the keys of the login form's tokens and of
/// the stored session names.
pub struct Sessions {
    settings: Arc<dyn SettingsStore>,
    login_key: ServerKey,
    id_key: ServerKey,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions kept in `settings`, with keys derived from the server key (so every instance
    /// sharing the key and the store shares the sessions).
    pub fn new(key: &ServerKey, settings: Arc<dyn SettingsStore>) -> Self {
        Self {
            settings,
            login_key: ServerKey::from_bytes(key.derive("provision-server/console-login", &[])),
            id_key: ServerKey::from_bytes(key.derive("provision-server/console-session", &[])),
        }
    }

    /// The settings key of a session id.
    fn storage_key(&self, id: &str) -> String {
        format!(
            "{PREFIX}{}",
            hex::encode(self.id_key.derive("session-id", &[id.as_bytes()]))
        )
    }

    /// The login form's CSRF token for the nonce in the `plogin` cookie.
    pub fn login_token(&self, nonce: &str) -> String {
        hex::encode(
            self.login_key
                .derive("console-login-csrf", &[nonce.as_bytes()]),
        )
    }

    /// Whether `token` is the login form's token for the request's `plogin` cookie
    /// (constant time). Nothing is looked up: the token is checked against its signature.
    pub fn login_token_ok(&self, headers: &HeaderMap, token: &str) -> bool {
        match cookie_value(headers, LOGIN_COOKIE) {
            Some(nonce) if !nonce.is_empty() => self
                .login_token(&nonce)
                .as_bytes()
                .ct_eq(token.as_bytes())
                .into(),
            _ => false,
        }
    }

    /// A new session, stored.
    pub async fn create(&self, authenticated: bool) -> Result<Session, AppError> {
        let session = Session {
            id: random_token(16),
            csrf: random_token(32),
            authenticated,
        };
        let stored = Stored {
            csrf: session.csrf.clone(),
            authenticated,
            created: unix_now(),
            generation: self.generation().await?,
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| AppError::Internal(format!("session: {e}")))?;
        self.settings
            .put_setting(&self.storage_key(&session.id), &json)
            .await?;
        Ok(session)
    }

    /// The session named by the request's cookie, if it is stored and has not expired (an
    /// expired one is removed).
    pub async fn from_headers(&self, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
        let Some(id) = cookie_value(headers, COOKIE).filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        let key = self.storage_key(&id);
        let Some(json) = self.settings.get_setting(&key).await? else {
            return Ok(None);
        };
        let Ok(stored) = serde_json::from_str::<Stored>(&json) else {
            return Ok(None);
        };
        if unix_now().saturating_sub(stored.created) >= LIFETIME.as_secs()
            || stored.generation != self.generation().await?
        {
            self.settings.delete_setting(&key).await?;
            return Ok(None);
        }
        Ok(Some(Session {
            id,
            csrf: stored.csrf,
            authenticated: stored.authenticated,
        }))
    }

    /// Ends a session.
    pub async fn remove(&self, id: &str) -> Result<(), AppError> {
        self.settings.delete_setting(&self.storage_key(id)).await?;
        Ok(())
    }

    /// Ends every session, on every instance sharing the store: a new generation begins
    /// (each old session's entry is removed when it is next presented).
    pub async fn end_all(&self) -> Result<(), AppError> {
        self.settings
            .put_setting(GENERATION_KEY, &random_token(16))
            .await?;
        Ok(())
    }

    async fn generation(&self) -> Result<String, AppError> {
        Ok(self
            .settings
            .get_setting(GENERATION_KEY)
            .await?
            .unwrap_or_default())
    }
}

/// The `Set-Cookie` value carrying a new login nonce, and the nonce.
pub fn login_cookie(secure: bool) -> (String, String) {
    let nonce = random_token(16);
    let cookie = format!(
        "{LOGIN_COOKIE}={nonce}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LOGIN_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    (cookie, nonce)
}

/// The `Set-Cookie` value that removes the login nonce cookie.
pub fn clear_login_cookie(secure: bool) -> String {
    format!(
        "{LOGIN_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value for a session.
pub fn set_cookie(session: &Session, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session.id,
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in the request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::MemorySettings;

    fn cookie_headers(value: String) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, value.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn end_all_ends_every_session_of_every_instance() {
        let key = ServerKey::generate();
        let settings = Arc::new(MemorySettings::new());
        let (a, b) = (
            Sessions::new(&key, settings.clone()),
            Sessions::new(&key, settings.clone()),
        );
        let one = a.create(true).await.unwrap();
        let two = b.create(true).await.unwrap();
        let h1 = cookie_headers(format!("{COOKIE}={}", one.id));
        let h2 = cookie_headers(format!("{COOKIE}={}", two.id));
        assert!(b.from_headers(&h1).await.unwrap().is_some());
        a.end_all().await.unwrap();
        assert!(a.from_headers(&h1).await.unwrap().is_none());
        assert!(b.from_headers(&h2).await.unwrap().is_none());
        assert!(
            settings
                .get_setting(&a.storage_key(&two.id))
                .await
                .unwrap()
                .is_none(),
            "an ended session's entry is removed when presented"
        );
        let three = b.create(true).await.unwrap();
        let h3 = cookie_headers(format!("{COOKIE}={}", three.id));
        assert!(
            a.from_headers(&h3).await.unwrap().is_some(),
            "a session begun after end_all works"
        );
    }

    #[tokio::test]
    async fn sessions_are_stored_shared_and_removed() {
        let key = ServerKey::generate();
        let settings = Arc::new(MemorySettings::new());
        let sessions = Sessions::new(&key, settings.clone());
        let s = sessions.create(true).await.unwrap();
        assert_eq!(s.id.len(), 22, "128 bits, base64url");
        let h = cookie_headers(format!("other=1; {COOKIE}={}", s.id));
        assert_eq!(sessions.from_headers(&h).await.unwrap().unwrap().id, s.id);
        // Another instance with the same key and store knows it; another key does not.
        let twin = Sessions::new(&key, settings.clone());
        let seen = twin.from_headers(&h).await.unwrap().unwrap();
        assert!(seen.authenticated && seen.csrf_ok(&s.csrf) && !seen.csrf_ok("nope"));
        let stranger = Sessions::new(&ServerKey::generate(), settings.clone());
        assert!(stranger.from_headers(&h).await.unwrap().is_none());
        // The store holds neither the id nor its cookie.
        assert!(
            settings
                .get_setting(&format!("{PREFIX}{}", s.id))
                .await
                .unwrap()
                .is_none()
        );
        let c = set_cookie(&s, true);
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Strict")
                && c.contains("Path=/admin")
                && c.ends_with("Secure")
        );
        twin.remove(&s.id).await.unwrap();
        assert!(
            sessions.from_headers(&h).await.unwrap().is_none(),
            "logged out everywhere"
        );
        assert!(
            sessions
                .from_headers(&HeaderMap::new())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            sessions
                .from_headers(&cookie_headers(format!("{COOKIE}=")))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_expired_session_is_refused_and_removed() {
        let key = ServerKey::generate();
        let settings = Arc::new(MemorySettings::new());
        let sessions = Sessions::new(&key, settings.clone());
        let s = sessions.create(true).await.unwrap();
        let stored_key = sessions.storage_key(&s.id);
        let old = Stored {
            csrf: s.csrf.clone(),
            authenticated: true,
            created: unix_now() - LIFETIME.as_secs(),
            generation: String::new(),
        };
        settings
            .put_setting(&stored_key, &serde_json::to_string(&old).unwrap())
            .await
            .unwrap();
        let h = cookie_headers(format!("{COOKIE}={}", s.id));
        assert!(sessions.from_headers(&h).await.unwrap().is_none());
        assert!(settings.get_setting(&stored_key).await.unwrap().is_none());
    }

    #[test]
    fn login_tokens_are_signed_and_bound_to_the_cookie() {
        let key = ServerKey::generate();
        let sessions = Sessions::new(&key, Arc::new(MemorySettings::new()));
        let (cookie, nonce) = login_cookie(false);
        assert!(cookie.starts_with("plogin=") && cookie.contains("HttpOnly"));
        let token = sessions.login_token(&nonce);
        let h = cookie_headers(format!("{LOGIN_COOKIE}={nonce}"));
        assert!(sessions.login_token_ok(&h, &token));
        assert!(!sessions.login_token_ok(&h, "00"));
        assert!(!sessions.login_token_ok(&HeaderMap::new(), &token));
        // The same on another instance with the same key; not with another key.
        let twin = Sessions::new(&key, Arc::new(MemorySettings::new()));
        assert!(
            twin.login_token_ok(&h, &token),
            "a form from one instance posted to another"
        );
        let other = Sessions::new(&ServerKey::generate(), Arc::new(MemorySettings::new()));
        assert!(!other.login_token_ok(&h, &token), "another server key");
    }
}
