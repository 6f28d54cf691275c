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
//!
//! A message from the durable queue gets `Message-ID: <job id@swivel-provision>`.

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
    /// The subject; the templates are for provision codes, so a device-bound notice always
    /// gets the built-in subject, text and HTML.
    fn subject(&self, m: &ProvisionMessage) -> String {
        let s = match &self.subject {
            Some(t) if m.notice().is_none() => t.render(m),
            _ => m.subject().to_owned(),
        };
        // A header value is one line.
        s.split(['\r', '\n'])
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn text(&self, m: &ProvisionMessage) -> String {
        match &self.text {
            Some(t) if m.notice().is_none() => t.render(m),
            _ => m.text_body(),
        }
    }

    /// The HTML body, and whether it refers to the inline QR image.
    fn html(&self, m: &ProvisionMessage) -> (String, bool) {
        let has_qr = m.qr().is_some();
        match &self.html {
            Some(t) if m.notice().is_none() => (t.render(m), has_qr && t.uses_qr()),
            _ => (default_html(m), has_qr),
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
        // A message of the durable queue is named for its job, so that a copy delivered
        // twice (the queue delivers at least once) can be recognised; else lettre makes one.
        .message_id(m.job_id().map(|id| format!("<{id}@swivel-provision>")))
        .multipart(body)
        // The message holds only what the templates produced; this error carries no content.
        .map_err(|e| TransportError::permanent("cannot build the email", Some(Box::new(e))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::{Destination, JobId, ProvisionCode, Username};

    fn message() -> ProvisionMessage {
        ProvisionMessage::new(
            Username::parse("alice").unwrap(),
            Destination::email("alice@example.com").unwrap(),
            Some(ProvisionCode::new("1234567890")),
            Default::default(),
            time::OffsetDateTime::now_utc(),
            600,
        )
    }

    fn message_id(m: &ProvisionMessage) -> String {
        let from: Mailbox = "provision@example.com".parse().unwrap();
        let to: Mailbox = "alice@example.com".parse().unwrap();
        let email = build(&from, to, &Templates::default(), m).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        raw.lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("a Message-ID header")
            .to_owned()
    }

    #[test]
    fn a_device_notice_uses_the_built_in_words_escaped_and_carries_no_code() {
        let notice = ProvisionMessage::device_notice(
            Username::parse("alice").unwrap(),
            Destination::email("alice@example.com").unwrap(),
            swivel_provision::DeviceNotice {
                at: time::OffsetDateTime::from_unix_timestamp(1_704_067_200).unwrap(),
                device: Some(swivel_provision::DeviceInfo {
                    model: Some("<b>Pixel</b>".into()),
                    ..Default::default()
                }),
            },
        );
        let custom = Templates {
            subject: Some(Template::parse("subject", "Code for {username}", false).unwrap()),
            text: Some(Template::parse("text_template", "Code {code}", false).unwrap()),
            html: None,
        };
        let from: Mailbox = "provision@example.com".parse().unwrap();
        let to: Mailbox = "alice@example.com".parse().unwrap();
        let email = build(&from, to, &custom, &notice).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(
            raw.contains("Subject: A new device was provisioned"),
            "{raw}"
        );
        let text = custom.text(&notice);
        assert!(text.contains("2024-01-01 00:00 UTC"), "{text}");
        assert!(!text.contains("Code "), "the code template is not used");
        let (html, qr) = custom.html(&notice);
        assert!(
            html.contains("&lt;b&gt;Pixel&lt;/b&gt;"),
            "escaped in HTML: {html}"
        );
        assert!(!html.contains("<b>Pixel"), "{html}");
        assert!(!qr, "no QR code in a notice");
    }

    #[test]
    fn a_queued_message_is_named_for_its_job_and_others_get_a_fresh_id() {
        let job = JobId::generate();
        let queued = message().with_job_id(job.clone());
        assert_eq!(message_id(&queued), format!("<{job}@swivel-provision>"));
        let (a, b) = (message_id(&message()), message_id(&message()));
        assert_ne!(a, b, "lettre makes a fresh Message-ID per email");
        assert!(!a.contains("swivel-provision>"));
    }
}
