//! Builds the MIME email for one [`ProvisionMessage`].
//!
//! ```text
//! multipart/alternative
//! ├── text/plain                 (the text template)
//! └── text/html                  (the HTML template), or, when it shows the QR code:
//!     multipart/related
//!     ├── text/html              <img src="cid:provision-qr@swivel-provision">
//!     └── image/png              Content-ID: <provision-qr@swivel-provision>, inline
//! ```

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use swivel_provision::{ProvisionMessage, TransportError};

use crate::template::{QR_CONTENT_ID, Template, default_html};

/// The configured templates (each `None` means the built-in default).
#[derive(Debug, Clone, Default)]
pub(crate) struct Templates {
    pub(crate) subject: Option<Template>,
    pub(crate) text: Option<Template>,
    pub(crate) html: Option<Template>,
}

impl Templates {
    fn subject(&self, m: &ProvisionMessage) -> String {
        let s = match &self.subject {
            Some(t) => t.render(m),
            None => ProvisionMessage::SUBJECT.to_owned(),
        };
        // A header value is one line.
        s.split(['\r', '\n'])
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn text(&self, m: &ProvisionMessage) -> String {
        match &self.text {
            Some(t) => t.render(m),
            None => m.text_body(),
        }
    }

    /// The HTML body, and whether it refers to the inline QR image.
    fn html(&self, m: &ProvisionMessage) -> (String, bool) {
        let has_qr = m.qr().is_some();
        match &self.html {
            Some(t) => (t.render(m), has_qr && t.uses_qr()),
            None => (default_html(m), has_qr),
        }
    }
}

/// Builds the email. The caller has checked both addresses.
pub(crate) fn build(
    from: &Mailbox,
    to: Mailbox,
    templates: &Templates,
    m: &ProvisionMessage,
) -> Result<Message, TransportError> {
    let text = SinglePart::plain(templates.text(m));
    let (html, with_qr) = templates.html(m);
    let html = SinglePart::html(html);
    let body = match m.qr().filter(|_| with_qr) {
        Some(qr) => MultiPart::alternative().singlepart(text).multipart(
            MultiPart::related().singlepart(html).singlepart(
                Attachment::new_inline_with_name(
                    QR_CONTENT_ID.to_owned(),
                    "provision-qr.png".to_owned(),
                )
                .body(
                    qr.png.clone(),
                    ContentType::parse("image/png").expect("valid MIME type"),
                ),
            ),
        ),
        None => MultiPart::alternative().singlepart(text).singlepart(html),
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(templates.subject(m))
        .multipart(body)
        // The message holds only what the templates produced; this error carries no content.
        .map_err(|e| TransportError::permanent("cannot build the email", Some(Box::new(e))))
}
