//! [`Transport`]: delivers one provision message to one destination, and the message it
//! delivers.

use std::fmt;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::code::ProvisionCode;
use crate::error::TransportError;
use crate::types::{Destination, DeviceInfo, Username};

/// Delivers a rendered provision message to one destination (an email address, a phone).
///
/// # What an implementer must guarantee
/// - It sends only to `message.destination`.
/// - It never logs the code, the links or the QR code, and puts none of them into an error.
/// - Errors say whether a retry can help ([`TransportError::is_transient`]).
/// - It checks the destination's address (email syntax, E.164) before it connects, and
///   refuses a bad one with a permanent error naming the address.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Delivers the message.
    async fn deliver(&self, message: &ProvisionMessage) -> Result<(), TransportError>;
}

/// The three Provision URLs (DESIGN §7) for one code. The *provision* and *complete* links
/// contain the code and are secret.
#[derive(Clone, Default)]
pub struct ProvisionLinks {
    pub(crate) provision: Option<SecretString>,
    pub(crate) getsettings: Option<String>,
    pub(crate) complete: Option<SecretString>,
}

impl ProvisionLinks {
    /// The *provision* link (contains the code).
    pub fn provision(&self) -> Option<&str> {
        self.provision.as_ref().map(|s| s.expose_secret())
    }

    /// The *getsettings* link (Site ID only; not secret).
    pub fn getsettings(&self) -> Option<&str> {
        self.getsettings.as_deref()
    }

    /// The *complete* link (Site ID and code): the one-step Provision URL, and what the QR
    /// code encodes.
    pub fn complete(&self) -> Option<&str> {
        self.complete.as_ref().map(|s| s.expose_secret())
    }

    /// The link a user should open: *complete* if configured, else *provision*.
    pub fn best(&self) -> Option<&str> {
        self.complete().or_else(|| self.provision())
    }

    /// Whether no link is configured.
    pub fn is_empty(&self) -> bool {
        self.provision.is_none() && self.getsettings.is_none() && self.complete.is_none()
    }
}

impl fmt::Debug for ProvisionLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionLinks")
            .field("provision", &self.provision.as_ref().map(|_| "[REDACTED]"))
            .field("getsettings", &self.getsettings)
            .field("complete", &self.complete.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A QR code of the complete Provision URL. Secret (it encodes the code).
#[derive(Clone)]
pub struct QrImage {
    /// SVG document.
    pub svg: String,
    /// PNG image bytes.
    pub png: Vec<u8>,
}

impl fmt::Debug for QrImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QrImage(svg: {} bytes, png: {} bytes)",
            self.svg.len(),
            self.png.len()
        )
    }
}

/// What a device-bound notice tells the user
/// ([`Policy::notify_device_bound`](crate::Policy::notify_device_bound)): when a new device
/// was provisioned and what was logged of it. It carries no code and no provision Id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNotice {
    /// When the device was provisioned.
    pub at: OffsetDateTime,
    /// The device information logged (only when the policy logs it).
    pub device: Option<DeviceInfo>,
}

/// One provision message for one user and destination. Secret parts (code, links, QR) are
/// reached through accessors; `Debug` shows none of them.
#[derive(Clone)]
pub struct ProvisionMessage {
    /// The user.
    pub username: Username,
    /// Where to deliver it.
    pub destination: Destination,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    /// The validity period, in seconds.
    pub validity_secs: u32,
    pub(crate) code: Option<ProvisionCode>,
    pub(crate) links: ProvisionLinks,
    /// Rendered on first use ([`ProvisionMessage::qr`]): most transports never show it,
    /// and rendering costs more than the rest of a request.
    pub(crate) qr: std::sync::OnceLock<Option<QrImage>>,
    /// Whether [`ProvisionMessage::qr`] renders the best link (messages the core makes, with
    /// feature `qr`) or only shows an image given with [`ProvisionMessage::with_qr`].
    pub(crate) render_qr: bool,
    /// The durable queue's job that carries this message (`None`: not from a
    /// [`JobStore`](crate::JobStore)).
    pub(crate) job_id: Option<crate::queue::JobId>,
    /// Set for a device-bound notice (no code, no links).
    pub(crate) notice: Option<DeviceNotice>,
}

impl ProvisionMessage {
    /// Subject line for email.
    pub const SUBJECT: &'static str = "Mobile Provision Code";
    /// Subject line of a device-bound notice.
    pub const NOTICE_SUBJECT: &'static str = "A new device was provisioned";

    /// Builds a message (for transports' own tests; the core makes the real ones).
    pub fn new(
        username: Username,
        destination: Destination,
        code: Option<ProvisionCode>,
        links: ProvisionLinks,
        expires_at: OffsetDateTime,
        validity_secs: u32,
    ) -> Self {
        Self {
            username,
            destination,
            expires_at,
            validity_secs,
            code,
            links,
            qr: std::sync::OnceLock::new(),
            render_qr: false,
            job_id: None,
            notice: None,
        }
    }

    /// A device-bound notice: no code, no links, no QR code.
    pub fn device_notice(
        username: Username,
        destination: Destination,
        notice: DeviceNotice,
    ) -> Self {
        Self {
            username,
            destination,
            expires_at: notice.at,
            validity_secs: 0,
            code: None,
            links: ProvisionLinks::default(),
            qr: std::sync::OnceLock::from(None),
            render_qr: false,
            job_id: None,
            notice: Some(notice),
        }
    }

    /// The notice, when this is a device-bound notice rather than a provision code.
    pub fn notice(&self) -> Option<&DeviceNotice> {
        self.notice.as_ref()
    }

    /// The subject line: [`ProvisionMessage::SUBJECT`], or
    /// [`ProvisionMessage::NOTICE_SUBJECT`] for a device-bound notice.
    pub fn subject(&self) -> &'static str {
        if self.notice.is_some() {
            Self::NOTICE_SUBJECT
        } else {
            Self::SUBJECT
        }
    }

    /// Marks the message as carried by a durable queue job (for transports' own tests).
    pub fn with_job_id(mut self, id: crate::queue::JobId) -> Self {
        self.job_id = Some(id);
        self
    }

    /// The Id of the durable queue job that carries this message, if any. The same message
    /// may be delivered more than once (the queue delivers at least once): transports put
    /// this Id where a receiver can see it (an SMTP `Message-ID`, an SMS reference) so
    /// that a duplicate can be recognised. Not secret.
    pub fn job_id(&self) -> Option<&crate::queue::JobId> {
        self.job_id.as_ref()
    }

    /// Builds links for [`ProvisionMessage::new`] (for transports' own tests).
    pub fn links_for_test(
        provision: Option<&str>,
        getsettings: Option<&str>,
        complete: Option<&str>,
    ) -> ProvisionLinks {
        ProvisionLinks {
            provision: provision.map(|s| s.to_owned().into()),
            getsettings: getsettings.map(str::to_owned),
            complete: complete.map(|s| s.to_owned().into()),
        }
    }

    /// Adds a QR image (for transports' own tests).
    pub fn with_qr(mut self, qr: QrImage) -> Self {
        self.qr = std::sync::OnceLock::from(Some(qr));
        self
    }

    /// The code, unless the policy sends only the Provision URL.
    pub fn code(&self) -> Option<&ProvisionCode> {
        self.code.as_ref()
    }

    /// The Provision URLs (empty when none is configured or the policy sends only the code).
    pub fn links(&self) -> &ProvisionLinks {
        &self.links
    }

    /// The QR code of the best link (feature `qr`, and only when a link exists), rendered
    /// on the first call and kept: a transport that never shows it never pays for it.
    pub fn qr(&self) -> Option<&QrImage> {
        self.qr
            .get_or_init(|| {
                #[cfg(feature = "qr")]
                if self.render_qr {
                    return self.links.best().and_then(crate::qr::render);
                }
                #[cfg(not(feature = "qr"))]
                let _ = self.render_qr;
                None
            })
            .as_ref()
    }

    /// Validity in whole minutes, rounded up.
    pub fn validity_minutes(&self) -> u32 {
        self.validity_secs.div_ceil(60)
    }

    /// The plain-text body (email text part, file transport).
    pub fn text_body(&self) -> String {
        if let Some(notice) = &self.notice {
            return notice_text(&self.username, notice);
        }
        let mut out = format!("Hello {},\n\n", self.username);
        out.push_str("Use this to provision your Swivel mobile client.\n\n");
        if let Some(link) = self.links.best() {
            out.push_str(&format!("Provision URL: {link}\n"));
        }
        if let Some(code) = &self.code {
            out.push_str(&format!("Provision code: {}\n", code.expose()));
        }
        if let Some(link) = self.links.getsettings() {
            out.push_str(&format!("Server settings: {link}\n"));
        }
        out.push_str(&format!(
            "\nIt can be used once and is valid for {} minute{}. Provisioning this device \
             replaces any device provisioned before.\n",
            self.validity_minutes(),
            if self.validity_minutes() == 1 {
                ""
            } else {
                "s"
            }
        ));
        out
    }

    /// A short text for SMS: the code and/or the best link, and the validity.
    pub fn short_text(&self) -> String {
        if let Some(notice) = &self.notice {
            return format!(
                "A new device was provisioned for {} at {}. Not you? Call your administrator.",
                self.username,
                notice_time(notice.at)
            );
        }
        let mut parts = Vec::new();
        if let Some(code) = &self.code {
            parts.push(format!("Provision code: {}", code.expose()));
        }
        if let Some(link) = self.links.best() {
            parts.push(link.to_owned());
        }
        parts.push(format!("Valid {} min.", self.validity_minutes()));
        parts.join(" ")
    }
}

/// A time as the notice shows it: `2024-01-01 00:00 UTC`.
fn notice_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

fn notice_text(username: &Username, notice: &DeviceNotice) -> String {
    let device = match &notice.device {
        Some(d) => format!("Device information logged: {d}.\n"),
        None => "No device information was logged.\n".to_owned(),
    };
    format!(
        "Hello {username},\n\nA new mobile device was provisioned for your account at {}.\n\
         {device}Any device provisioned before it no longer works.\n\n\
         If this was not you, tell your administrator now: someone may have your provision \
         code, and the administrator can revoke the device.\n",
        notice_time(notice.at)
    )
}

impl fmt::Debug for ProvisionMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionMessage")
            .field("username", &self.username)
            .field("destination", &self.destination)
            .field("expires_at", &self.expires_at)
            .field("code", &self.code.as_ref().map(|_| "[REDACTED]"))
            .field("links", &self.links)
            .field("qr", &self.qr.get().and_then(Option::as_ref))
            .field("job_id", &self.job_id)
            .field("notice", &self.notice)
            .finish()
    }
}
