//! Console sessions, kept in the memory of this process: a random 128-bit id in a cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/admin`, `Secure` under TLS), a CSRF token per
//! session that every console form carries, and a fresh id at login.
//!
//! Nothing is stored before the console password is given: the login form's CSRF token is
//! a signed double-submit token, an HMAC (under a key made at start) of a random nonce that
//! the browser holds in the `plogin` cookie. Anonymous visitors cost no memory.
//!
//! Sessions are lost on restart and are not shared between server instances: behind a load
//! balancer, pin console users to one instance (or log in again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;
use subtle::ConstantTimeEq;
use swivel_provision::ServerKey;

use crate::credentials::random_token;

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
    created: Instant,
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

/// The sessions of this process, and the key of the login form's tokens.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    login_key: ServerKey,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    /// No sessions.
    pub fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            login_key: ServerKey::generate(),
        }
    }

    /// Sessions stored now (expired ones included until the next login prunes them).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// A new session.
    pub fn create(&self, authenticated: bool) -> Session {
        let session = Session {
            id: random_token(16),
            csrf: random_token(32),
            authenticated,
            created: Instant::now(),
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.created.elapsed() < LIFETIME);
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// The session named by the request's cookie, if it exists and has not expired.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie_value(headers, COOKIE)?;
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id)
            .filter(|s| s.created.elapsed() < LIFETIME)
            .cloned()
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
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

    #[test]
    fn sessions_and_cookies() {
        let sessions = Sessions::new();
        let s = sessions.create(false);
        assert_eq!(s.id.len(), 22, "128 bits, base64url");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={}", s.id).parse().unwrap(),
        );
        assert_eq!(sessions.from_headers(&h).unwrap().id, s.id);
        assert!(s.csrf_ok(&s.csrf) && !s.csrf_ok("nope"));
        let c = set_cookie(&s, true);
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Strict")
                && c.contains("Path=/admin")
                && c.ends_with("Secure")
        );
        sessions.remove(&s.id);
        assert!(sessions.from_headers(&h).is_none());
    }

    #[test]
    fn login_tokens_are_signed_and_bound_to_the_cookie() {
        let sessions = Sessions::new();
        let (cookie, nonce) = login_cookie(false);
        assert!(cookie.starts_with("plogin=") && cookie.contains("HttpOnly"));
        let token = sessions.login_token(&nonce);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("{LOGIN_COOKIE}={nonce}").parse().unwrap(),
        );
        assert!(sessions.login_token_ok(&h, &token));
        assert!(!sessions.login_token_ok(&h, "00"));
        assert!(!sessions.login_token_ok(&HeaderMap::new(), &token));
        let other = Sessions::new();
        assert!(!other.login_token_ok(&h, &token), "another process's key");
        assert!(sessions.is_empty(), "nothing stored");
    }
}
