//! Console sessions, kept in the memory of this process: a random 128-bit id in a cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/admin`, `Secure` under TLS), a CSRF token per
//! session that every console form carries, and a fresh id at login.
//!
//! Sessions are lost on restart and are not shared between server instances: behind a load
//! balancer, pin console users to one instance (or log in again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;
use subtle::ConstantTimeEq;

use crate::credentials::random_token;

/// The cookie's name.
pub const COOKIE: &str = "psid";
/// A session ends this long after it was created.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Failed console logins allowed per [`FAILURE_WINDOW`] before logins are refused.
pub const MAX_FAILURES: u32 = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

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

/// The sessions of this process, and the failed-login counter.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    failures: Mutex<(u32, Option<Instant>)>,
}

impl Sessions {
    /// No sessions.
    pub fn new() -> Self {
        Self::default()
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

    /// Whether console logins are currently refused after too many failures.
    pub fn login_locked(&self) -> bool {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.0 >= MAX_FAILURES && f.1.is_some_and(|t| t.elapsed() < FAILURE_WINDOW)
    }

    /// Counts a failed console login.
    pub fn login_failed(&self) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.1.is_none_or(|t| t.elapsed() >= FAILURE_WINDOW) {
            *f = (0, Some(Instant::now()));
        }
        f.0 += 1;
    }

    /// Resets the failed-login counter.
    pub fn login_succeeded(&self) {
        *self.failures.lock().unwrap_or_else(|e| e.into_inner()) = (0, None);
    }
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
    fn logins_lock_after_failures() {
        let s = Sessions::new();
        for _ in 0..MAX_FAILURES {
            assert!(!s.login_locked());
            s.login_failed();
        }
        assert!(s.login_locked());
        s.login_succeeded();
        assert!(!s.login_locked());
    }
}
