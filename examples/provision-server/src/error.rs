//! The host's own error type, and how it becomes a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::html;

/// What can go wrong while serving a request or running a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A core error (its `public_message` is what a user sees).
    #[error(transparent)]
    Core(#[from] swivel_provision::Error),
    /// A storage backend failed.
    #[error(transparent)]
    Store(#[from] swivel_provision::StoreError),
    /// A bad request; the message is shown as is (it must hold no secret).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than [`crate::app::MAX_BODY_BYTES`].
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request needs a console login or a valid API token.
    #[error("unauthorized")]
    Unauthorized,
    /// The configuration or data directory is unusable.
    #[error("{0}")]
    Setup(String),
    /// Anything else (shown to users only as a generic server error).
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Core(e) => match e {
                swivel_provision::Error::UnknownUser { .. }
                | swivel_provision::Error::UnknownServerId => StatusCode::NOT_FOUND,
                swivel_provision::Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                swivel_provision::Error::SelfProvisionDisabled => StatusCode::FORBIDDEN,
                swivel_provision::Error::AccountLocked { .. } => StatusCode::LOCKED,
                swivel_provision::Error::AdminCodePending => StatusCode::CONFLICT,
                e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
                swivel_provision::Error::Store(_)
                | swivel_provision::Error::Transport(_)
                | swivel_provision::Error::Missing(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            AppError::Store(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Store(_) | AppError::Setup(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The words a user may see: the seed wording for core errors, nothing internal.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Core(e) => e.public_message(),
            AppError::BadRequest(m) => m.clone(),
            AppError::PayloadTooLarge => "The request body is too large".into(),
            AppError::Unauthorized => "Unauthorized".into(),
            AppError::Store(_) | AppError::Setup(_) | AppError::Internal(_) => {
                "Server error, please try again later".into()
            }
        }
    }

    /// Logs server-side failures (with their source chain, which holds no secret).
    pub fn log(&self) {
        if let AppError::Core(e @ swivel_provision::Error::NoSuitableTransport { .. }) = self {
            tracing::warn!(error = %e, "NoSuitableTransport: no transport is configured for the user's channels");
        } else if self.status().is_server_error() {
            tracing::error!(error = %error_chain(self), "request failed");
        }
    }
}

/// `error: source: source...` on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let body = html::page(
            "Error",
            maud::html! { p class="error" { (self.public_message()) } },
        );
        (status, html::headers(), body).into_response()
    }
}
