//! The SMPP 3.4 backend: one cached transmitter bind, re-established when it was lost.
//!
//! The first message connects and binds (`bind_transmitter`); the session is kept for the
//! next messages (rusmppc answers the SMSC's `enquire_link` and sends its own every 30 s).
//! A session the SMSC dropped or unbound is noticed before use, or when a submit on it fails
//! with a connection error; either way the message is submitted once more on a fresh bind.
//! [`SmsTransport::close`](crate::SmsTransport::close) unbinds. Messages on one transport
//! are submitted one at a time.
//!
//! rusmpp logs whole PDUs (with the password and the text) at debug level, so the
//! connection task runs with no tracing subscriber.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusmpp::pdus::{BindTransmitter, SubmitSm};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, InterfaceVersion, Npi, Ton};
use rusmpp::{CommandStatus, Pdu};
use rusmppc::error::Error as SmppError;
use rusmppc::{ConnectionBuilder, Event};
use secrecy::{ExposeSecret, SecretString};
use swivel_provision::TransportError;
use tokio::sync::Mutex;
use tracing::instrument::WithSubscriber;

use crate::config::SmsConfigError;
use crate::segments::{encode_gsm7, encode_ucs2};

/// Longest `short_message`, in octets.
pub(crate) const MAX_SHORT_MESSAGE: usize = 254;

/// Settings of the SMPP backend, checked.
pub(crate) struct SmppSettings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) system_id: String,
    pub(crate) password: SecretString,
    pub(crate) system_type: String,
    pub(crate) source_addr: String,
    pub(crate) source_addr_ton: Option<u8>,
    pub(crate) source_addr_npi: Option<u8>,
    pub(crate) timeout: Duration,
}

struct Session {
    client: rusmppc::Client,
    /// Set by the event task when the SMSC closed the connection, unbound, or the
    /// connection failed.
    lost: Arc<AtomicBool>,
}

impl Session {
    fn usable(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && self.client.is_active()
    }
}

/// An SMSC reached over SMPP 3.4.
pub(crate) struct Smpp {
    url: String,
    endpoint: String,
    system_id: COctetString<1, 16>,
    password: SecretString,
    system_type: COctetString<1, 13>,
    source_ton: Ton,
    source_npi: Npi,
    source_addr: COctetString<1, 21>,
    timeout: Duration,
    session: Mutex<Option<Session>>,
}

fn ascii_field<const MAX: usize>(
    setting: &str,
    value: &str,
    max_chars: usize,
) -> Result<COctetString<1, MAX>, SmsConfigError> {
    if value.len() > max_chars || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(SmsConfigError::new(
            setting,
            format!("must be at most {max_chars} printable ASCII characters"),
        ));
    }
    COctetString::from_str(value).map_err(|e| SmsConfigError::new(setting, e.to_string()))
}

impl Smpp {
    pub(crate) fn new(s: SmppSettings) -> Result<Self, SmsConfigError> {
        let host = s.host.trim();
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(SmsConfigError::new(
                "host",
                "must be a host name or IP address",
            ));
        }
        if s.port == 0 {
            return Err(SmsConfigError::new("port", "must be 1 to 65535"));
        }
        let host_in_url = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        if s.system_id.is_empty() {
            return Err(SmsConfigError::new("system_id", "must not be empty"));
        }
        let system_id = ascii_field("system_id", &s.system_id, 15)?;
        // Only the checks: the password goes into a PDU when binding.
        ascii_field::<9>("password", s.password.expose_secret(), 8).map_err(|_| {
            SmsConfigError::new("password", "must be at most 8 printable ASCII characters")
        })?;
        let system_type = ascii_field("system_type", &s.system_type, 12)?;
        let (ton, npi, addr) = source_address(&s.source_addr)?;
        let source_addr = ascii_field("source_addr", &addr, 20)?;
        Ok(Self {
            url: format!("smpp://{host_in_url}:{}", s.port),
            endpoint: format!("{host}:{}", s.port),
            system_id,
            password: s.password,
            system_type,
            source_ton: s.source_addr_ton.map(Ton::from).unwrap_or(ton),
            source_npi: s.source_addr_npi.map(Npi::from).unwrap_or(npi),
            source_addr,
            timeout: s.timeout,
            session: Mutex::new(None),
        })
    }

    /// Submits `text` to the E.164 number `to`.
    pub(crate) async fn send(&self, to: &str, text: &str) -> Result<(), TransportError> {
        let submit = self.submit_sm(to, text)?;
        let mut guard = self.session.lock().await;
        if let Some(session) = guard.take() {
            if session.usable() {
                match session.client.submit_sm(submit.clone()).await {
                    Ok(_) => {
                        *guard = Some(session);
                        return Ok(());
                    }
                    Err(e) if is_lost_connection(&e) => {
                        tracing::debug!(smsc = %self.endpoint, "SMPP session lost; binding again");
                        let _ = session.client.close().await;
                    }
                    Err(e) => {
                        if matches!(e, SmppError::UnexpectedResponse { .. }) {
                            *guard = Some(session);
                        } else {
                            let _ = session.client.close().await;
                        }
                        return Err(self.submit_error(to, e));
                    }
                }
            } else {
                tracing::debug!(smsc = %self.endpoint, "SMPP session was dropped; binding again");
                let _ = session.client.close().await;
            }
        }
        let session = self.bind().await?;
        match session.client.submit_sm(submit).await {
            Ok(_) => {
                *guard = Some(session);
                Ok(())
            }
            Err(e) => {
                if matches!(e, SmppError::UnexpectedResponse { .. }) {
                    *guard = Some(session);
                } else {
                    let _ = session.client.close().await;
                }
                Err(self.submit_error(to, e))
            }
        }
    }

    /// Unbinds and closes the cached session, if any.
    pub(crate) async fn close(&self) {
        if let Some(session) = self.session.lock().await.take() {
            if session.usable() {
                if let Err(e) = session.client.unbind().await {
                    tracing::debug!(smsc = %self.endpoint, error = %e, "SMPP unbind failed");
                }
            }
            let _ = session.client.close_and_wait().await;
        }
    }

    fn submit_sm(&self, to: &str, text: &str) -> Result<SubmitSm, TransportError> {
        let (data_coding, bytes) = match encode_gsm7(text) {
            Some(bytes) => (DataCoding::McSpecific, bytes),
            None => (DataCoding::Ucs2, encode_ucs2(text)),
        };
        if bytes.len() > MAX_SHORT_MESSAGE {
            return Err(TransportError::permanent(
                format!(
                    "SMS to {to} via smpp: text is {} octets, more than the {MAX_SHORT_MESSAGE} \
                     one submit_sm carries",
                    bytes.len()
                ),
                None,
            ));
        }
        let short_message = OctetString::from_vec(bytes).map_err(|e| {
            TransportError::permanent(
                format!("SMS to {to} via smpp: text not encodable"),
                Some(e.into()),
            )
        })?;
        let destination = COctetString::from_str(to.trim_start_matches('+')).map_err(|e| {
            TransportError::permanent(format!("invalid SMS destination \"{to}\""), Some(e.into()))
        })?;
        Ok(SubmitSm::builder()
            .source_addr_ton(self.source_ton)
            .source_addr_npi(self.source_npi)
            .source_addr(self.source_addr.clone())
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(destination)
            .data_coding(data_coding)
            .short_message(short_message)
            .build())
    }

    async fn bind(&self) -> Result<Session, TransportError> {
        let connect = ConnectionBuilder::new()
            .response_timeout(self.timeout)
            .enquire_link_response_timeout(self.timeout)
            .disable_interface_version_check()
            .no_spawn()
            .connect(&self.url);
        let (client, mut events, connection) = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| {
                TransportError::transient(
                    format!("SMPP connection to {} timed out", self.endpoint),
                    None,
                )
            })?
            .map_err(|e| {
                TransportError::transient(
                    format!("could not connect to the SMSC at {}", self.endpoint),
                    Some(e.into()),
                )
            })?;
        tokio::spawn(connection.with_subscriber(tracing::subscriber::NoSubscriber::default()));
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt as _;
            while let Some(event) = events.next().await {
                match event {
                    Event::Incoming(command) if matches!(command.pdu(), Some(Pdu::Unbind)) => {
                        tracing::debug!(smsc = %endpoint, "SMSC unbound the SMPP session");
                        flag.store(true, Ordering::SeqCst);
                    }
                    Event::Incoming(_) => {}
                    Event::Error(e) => {
                        tracing::debug!(smsc = %endpoint, error = %e, "SMPP session error");
                        flag.store(true, Ordering::SeqCst);
                    }
                }
            }
            flag.store(true, Ordering::SeqCst);
        });

        let password = COctetString::from_str(self.password.expose_secret()).map_err(|_| {
            TransportError::permanent("SMPP password is not a valid C-octet string", None)
        })?;
        let bind = BindTransmitter::builder()
            .system_id(self.system_id.clone())
            .password(password)
            .system_type(self.system_type.clone())
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(COctetString::empty())
            .build();
        match client.bind_transmitter(bind).await {
            Ok(_) => {
                tracing::debug!(smsc = %self.endpoint, "SMPP transmitter bound");
                Ok(Session { client, lost })
            }
            Err(e) => {
                let _ = client.close().await;
                Err(self.bind_error(e))
            }
        }
    }

    fn bind_error(&self, e: SmppError) -> TransportError {
        let what = format!(
            "SMPP bind to {} as \"{}\"",
            self.endpoint,
            String::from_utf8_lossy(self.system_id.as_ref()).trim_end_matches('\0')
        );
        classify(&what, e)
    }

    fn submit_error(&self, to: &str, e: SmppError) -> TransportError {
        classify(&format!("SMS to {to} via smpp ({})", self.endpoint), e)
    }
}

/// An error that means the session is gone (the request may not have reached the SMSC).
fn is_lost_connection(e: &SmppError) -> bool {
    matches!(
        e,
        SmppError::ConnectionClosed | SmppError::ConnectionClosedByPeer | SmppError::Io(_)
    )
}

/// Whether an SMSC status may clear by itself (throttling, full queue, SMSC trouble).
pub(crate) fn status_is_transient(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRthrottled
            | CommandStatus::EsmeRmsgqful
            | CommandStatus::EsmeRsyserr
            | CommandStatus::EsmeRsubmitfail
            | CommandStatus::EsmeRxTAppn
            | CommandStatus::EsmeRinvbndsts
            | CommandStatus::EsmeRalybnd
            | CommandStatus::EsmeRunknownerr
    )
}

/// The SMPP name of a status, e.g. `ESME_RINVPASWD`.
pub(crate) fn status_name(status: CommandStatus) -> String {
    let debug = format!("{status:?}");
    match debug.strip_prefix("Esme") {
        Some(rest) => format!("ESME_{}", rest.to_ascii_uppercase()),
        None => debug,
    }
}

fn classify(what: &str, e: SmppError) -> TransportError {
    match e {
        SmppError::UnexpectedResponse { response } => {
            let status = response.status();
            let message = format!(
                "{what}: SMSC answered {} (0x{:08X})",
                status_name(status),
                u32::from(status)
            );
            if status == CommandStatus::EsmeRok || status_is_transient(status) {
                TransportError::transient(message, None)
            } else {
                TransportError::permanent(message, None)
            }
        }
        SmppError::Encode(e) => {
            TransportError::permanent(format!("{what}: PDU could not be encoded"), Some(e.into()))
        }
        SmppError::UnsupportedInterfaceVersion { .. } => {
            TransportError::permanent(format!("{what}: interface version refused"), None)
        }
        e @ (SmppError::ResponseTimeout { .. } | SmppError::EnquireLinkTimeout { .. }) => {
            TransportError::transient(
                format!("{what}: SMSC did not answer in time"),
                Some(e.into()),
            )
        }
        e => TransportError::transient(format!("{what}: connection failed"), Some(e.into())),
    }
}

/// Type of number, numbering plan and digits of a sender address.
fn source_address(raw: &str) -> Result<(Ton, Npi, String), SmsConfigError> {
    let raw = raw.trim();
    if let Some(digits) = raw.strip_prefix('+') {
        if crate::phone::is_e164(raw) {
            return Ok((Ton::International, Npi::Isdn, digits.to_owned()));
        }
        return Err(SmsConfigError::new(
            "source_addr",
            "a number with + must be E.164",
        ));
    }
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        if raw.len() > 20 {
            return Err(SmsConfigError::new("source_addr", "at most 20 digits"));
        }
        return Ok((Ton::Unknown, Npi::Isdn, raw.to_owned()));
    }
    if !raw.is_empty()
        && raw.len() <= 11
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
    {
        return Ok((Ton::Alphanumeric, Npi::Unknown, raw.to_owned()));
    }
    Err(SmsConfigError::new(
        "source_addr",
        "must be +digits (E.164), digits, or 1 to 11 letters and digits",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_follow_the_spec() {
        assert_eq!(status_name(CommandStatus::EsmeRinvpaswd), "ESME_RINVPASWD");
        assert_eq!(
            status_name(CommandStatus::EsmeRinvdstadr),
            "ESME_RINVDSTADR"
        );
    }

    #[test]
    fn status_classes() {
        for s in [
            CommandStatus::EsmeRthrottled,
            CommandStatus::EsmeRmsgqful,
            CommandStatus::EsmeRsyserr,
        ] {
            assert!(status_is_transient(s), "{s:?}");
        }
        for s in [
            CommandStatus::EsmeRbindfail,
            CommandStatus::EsmeRinvpaswd,
            CommandStatus::EsmeRinvsysid,
            CommandStatus::EsmeRinvdstadr,
            CommandStatus::EsmeRinvsrcadr,
        ] {
            assert!(!status_is_transient(s), "{s:?}");
        }
    }

    #[test]
    fn source_addresses() {
        let (ton, npi, a) = source_address("+447700900123").unwrap();
        assert_eq!(
            (ton, npi, a.as_str()),
            (Ton::International, Npi::Isdn, "447700900123")
        );
        assert_eq!(source_address("12345").unwrap().0, Ton::Unknown);
        assert_eq!(source_address("Swivel").unwrap().0, Ton::Alphanumeric);
        assert!(source_address("A-very-long-sender").is_err());
        assert!(source_address("").is_err());
    }

    fn settings() -> SmppSettings {
        SmppSettings {
            host: "127.0.0.1".into(),
            port: 2775,
            system_id: "swivel".into(),
            password: "secret".to_owned().into(),
            system_type: String::new(),
            source_addr: "Swivel".into(),
            source_addr_ton: None,
            source_addr_npi: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn settings_checks() {
        assert!(Smpp::new(settings()).is_ok());
        let mut s = settings();
        s.password = "ninechars".to_owned().into();
        let e = Smpp::new(s).err().unwrap();
        assert_eq!(e.setting, "password");
        assert!(!e.to_string().contains("ninechars"));
        let mut s = settings();
        s.system_id = "a-system-id-too-long".into();
        assert_eq!(Smpp::new(s).err().unwrap().setting, "system_id");
        let mut s = settings();
        s.host = "smpp://x".into();
        assert_eq!(Smpp::new(s).err().unwrap().setting, "host");
    }

    #[test]
    fn gsm7_text_uses_data_coding_0_and_others_ucs2() {
        let smpp = Smpp::new(settings()).unwrap();
        let pdu = smpp.submit_sm("+15551234567", "Code @1").unwrap();
        assert_eq!(pdu.data_coding, DataCoding::McSpecific);
        assert_eq!(
            pdu.short_message().as_ref(),
            &[b'C', b'o', b'd', b'e', b' ', 0x00, b'1']
        );
        let pdu = smpp.submit_sm("+15551234567", "Kod ł").unwrap();
        assert_eq!(pdu.data_coding, DataCoding::Ucs2);
        assert_eq!(pdu.short_message().as_ref().len(), 10);
        assert!(smpp.submit_sm("+15551234567", &"a".repeat(255)).is_err());
    }
}
