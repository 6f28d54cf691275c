//! Which transport carries each channel: SMTP for email and the SMS gateway for phones when
//! they are configured (`[smtp]`, `[sms]`), else the [`OutboxTransport`].

use std::path::Path;
use std::sync::Arc;

use swivel_provision::{Channel, Transport};

use crate::config::FileConfig;
use crate::error::AppError;
use crate::outbox::OutboxTransport;

/// A channel, its transport, and a description for the start-up line.
pub type Route = (Channel, Arc<dyn Transport>, String);

/// The transports for `config`, with the outbox in `<data_dir>/outbox` for channels without
/// a configured transport. `print` also prints outbox messages to stdout.
pub fn from_config(
    config: &FileConfig,
    data_dir: &Path,
    print: bool,
) -> Result<Vec<Route>, AppError> {
    let outbox = Arc::new(OutboxTransport::new(data_dir.join("outbox"), print));
    let mut out: Vec<Route> = Vec::new();
    match &config.smtp {
        Some(table) => {
            let smtp: swivel_provision_smtp::SmtpConfig = table
                .clone()
                .try_into()
                .map_err(|e| AppError::Setup(format!("invalid [smtp] configuration: {e}")))?;
            let host = smtp.host.clone();
            let transport = swivel_provision_smtp::SmtpTransport::new(smtp)
                .map_err(|e| AppError::Setup(format!("invalid [smtp] configuration: {e}")))?;
            out.push((
                Channel::Email,
                Arc::new(transport),
                format!("SMTP via {host}"),
            ));
        }
        None => out.push((
            Channel::Email,
            outbox.clone(),
            format!("outbox {}", outbox.dir().display()),
        )),
    }
    match &config.sms {
        Some(table) => {
            let sms: swivel_provision_sms::SmsConfig = table
                .clone()
                .try_into()
                .map_err(|e| AppError::Setup(format!("invalid [sms] configuration: {e}")))?;
            let transport = swivel_provision_sms::SmsTransport::new(sms)
                .map_err(|e| AppError::Setup(format!("invalid [sms] configuration: {e}")))?;
            out.push((Channel::Sms, Arc::new(transport), "SMS gateway".into()));
        }
        None => out.push((
            Channel::Sms,
            outbox.clone(),
            format!("outbox {}", outbox.dir().display()),
        )),
    }
    Ok(out)
}
