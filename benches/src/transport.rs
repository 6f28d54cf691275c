//! [`LastCodeTransport`]: a transport that keeps only the last code per user, so that long
//! runs do not grow memory the way `RecordingTransport` (which keeps every message) does.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use swivel_provision::{ProvisionCode, ProvisionMessage, Transport, TransportError, Username};

/// Keeps the last code delivered to each user until it is taken.
#[derive(Debug, Default)]
pub struct LastCodeTransport {
    codes: Mutex<HashMap<Username, ProvisionCode>>,
}

impl LastCodeTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes (removes) the last code delivered to the user.
    pub fn take_code(&self, username: &Username) -> Option<ProvisionCode> {
        self.codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(username)
    }

    /// Codes delivered and not yet taken.
    pub fn pending(&self) -> usize {
        self.codes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[async_trait]
impl Transport for LastCodeTransport {
    async fn deliver(&self, message: &ProvisionMessage) -> Result<(), TransportError> {
        if let Some(code) = message.code() {
            self.codes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(message.username.clone(), code.clone());
        }
        Ok(())
    }
}
