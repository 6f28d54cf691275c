//! [`ApiClient`]: the two calls of `provision-server`'s JSON API that `loadgen` needs to
//! prepare users and codes through a server whose store it cannot write itself (memory,
//! PostgreSQL), and to start each cycle of its `--full-cycle` mode.

use reqwest::Url;

use crate::error::BenchError;

/// Calls `PUT /api/v1/users/{u}` and `POST /api/v1/users/{u}/reprovision` with a bearer
/// token. `Debug` leaves the token out.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    authorization: String,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client sending `token` (made by `provision-server api token`).
    pub fn new(http: reqwest::Client, token: &str) -> Self {
        Self {
            http,
            authorization: format!("Bearer {}", token.trim()),
        }
    }

    fn url(base: &Url, user: &str, action: &str) -> Result<Url, BenchError> {
        base.join(&format!("/api/v1/users/{user}{action}"))
            .map_err(|e| BenchError::Invalid(format!("API URL for {user}: {e}")))
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(), BenchError> {
        let response = request
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .send()
            .await
            .map_err(|e| BenchError::Invalid(format!("{what}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(BenchError::Invalid(format!(
            "{what}: the server answered {status}: {}",
            body.chars().take(200).collect::<String>()
        )))
    }

    /// Adds (or replaces) `user` with the email destination `<user>@example.com`, in the
    /// mobile group.
    ///
    /// # Errors
    /// [`BenchError::Invalid`] with the status and the server's error for anything but
    /// success (a wrong token is `401`).
    pub async fn put_user(&self, base: &Url, user: &str) -> Result<(), BenchError> {
        let body =
            serde_json::json!({ "email": format!("{user}@example.com"), "mobile_group": true });
        self.send(
            self.http
                .put(Self::url(base, user, "")?)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
            &format!("adding user {user}"),
        )
        .await
    }

    /// Asks for a new provision code for `user` (the server queues its message).
    ///
    /// # Errors
    /// As [`ApiClient::put_user`].
    pub async fn reprovision(&self, base: &Url, user: &str) -> Result<(), BenchError> {
        self.send(
            self.http.post(Self::url(base, user, "/reprovision")?),
            &format!("reprovisioning {user}"),
        )
        .await
    }
}
