//! Which transport carries each channel: SMTP for email and the SMS gateway for phones when
//! they are configured (`[smtp]`, `[sms]`). The [`OutboxTransport`] carries the channels
//! left over only when the outbox is enabled: by default when neither `[smtp]` nor `[sms]`
//! is configured, else only with `[outbox] enabled = true`. A user whose only channel has
//! no transport gets a `NoSuitableTransport` error, never the outbox.

use std::path::Path;
use std::sync::Arc;

use swivel_provision::{Channel, Transport};

use crate::config::FileConfig;
use crate::error::AppError;
use crate::outbox::OutboxTransport;

/// A channel, its transport, and a description for the start-up line.
pub type Route = (Channel, Arc<dyn Transport>, String);

/// The transports for `config`; with the outbox enabled ([`FileConfig::outbox_enabled`]),
/// the outbox in its directory ([`crate::config::OutboxConfig::dir_in`], by default
/// `<data_dir>/outbox`) for channels without a configured transport. `print` also prints
/// outbox messages to stdout.
pub fn from_config(
    config: &FileConfig,
    data_dir: &Path,
    print: bool,
) -> Result<Vec<Route>, AppError> {
    let outbox = config
        .outbox_enabled()
        .then(|| Arc::new(OutboxTransport::new(config.outbox.dir_in(data_dir), print)));
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
        None => {
            if let Some(outbox) = &outbox {
                out.push((
                    Channel::Email,
                    outbox.clone(),
                    format!("outbox {}", outbox.dir().display()),
                ));
            }
        }
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
        None => {
            if let Some(outbox) = &outbox {
                out.push((
                    Channel::Sms,
                    outbox.clone(),
                    format!("outbox {}", outbox.dir().display()),
                ));
            }
        }
    }
    for channel in [Channel::Email, Channel::Sms] {
        if !out.iter().any(|(c, _, _)| *c == channel) {
            tracing::warn!(%channel, "no transport for this channel: its users get NoSuitableTransport");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels(config: &str) -> Vec<(Channel, String)> {
        let dir = tempfile::tempdir().unwrap();
        let config = FileConfig::parse(config).unwrap();
        from_config(&config, dir.path(), false)
            .unwrap()
            .into_iter()
            .map(|(c, _, what)| (c, what))
            .collect()
    }

    #[test]
    fn the_outbox_carries_only_what_the_config_gives_it() {
        let all = channels("");
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|(_, w)| w.starts_with("outbox")));
        let smtp = "[smtp]\nhost = \"127.0.0.1\"\nfrom = \"a@example.com\"\n";
        let only = channels(smtp);
        assert_eq!(only.len(), 1, "no outbox for SMS: {only:?}");
        assert_eq!(only[0].0, Channel::Email);
        let both = channels(&format!("{smtp}[outbox]\nenabled = true\n"));
        assert!(
            both.iter()
                .any(|(c, w)| *c == Channel::Sms && w.starts_with("outbox"))
        );
        assert!(channels("[outbox]\nenabled = false\n").is_empty());
    }
}
