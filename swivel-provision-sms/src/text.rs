//! The SMS text of a provision message: the default short text, or the configured template.

use swivel_provision::{ProvisionMessage, TransportError};

use crate::config::SmsConfigError;
use crate::segments::segments;

/// The placeholders a text template may use.
pub(crate) const TEXT_PLACEHOLDERS: [&str; 4] = ["code", "link", "validity_minutes", "username"];

/// Checks a text template: it must carry `{code}` or `{link}`, and use no unknown
/// `{placeholder}` (a typo would otherwise be sent to users verbatim).
pub(crate) fn check_text_template(template: &str) -> Result<(), SmsConfigError> {
    check_placeholders("text", template, &TEXT_PLACEHOLDERS)?;
    if !template.contains("{code}") && !template.contains("{link}") {
        return Err(SmsConfigError::new(
            "text",
            "must contain {code} or {link}, or the message carries nothing to provision with",
        ));
    }
    Ok(())
}

/// Rejects `{name}` placeholders (lowercase letters and `_`) that are not in `known`.
pub(crate) fn check_placeholders(
    setting: &str,
    template: &str,
    known: &[&str],
) -> Result<(), SmsConfigError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let name = &rest[..close];
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && !known.contains(&name)
        {
            return Err(SmsConfigError::new(
                setting,
                format!(
                    "unknown placeholder {{{name}}}; known: {}",
                    known
                        .iter()
                        .map(|k| format!("{{{k}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Replaces each `{name}` of `values` in one pass (a value that itself looks like a
/// placeholder is left as it is).
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    'outer: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        for (name, value) in values {
            if let Some(tail) = after.strip_prefix(name).and_then(|t| t.strip_prefix('}')) {
                out.push_str(value);
                rest = tail;
                continue 'outer;
            }
        }
        out.push('{');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The SMS text for `message`.
///
/// With no template: `Provision code: {code} {link} Valid {n} min.`; when that would take
/// more than one GSM-7 segment the link is left out (the code alone provisions). A message
/// with only a link becomes `Provision: {link} Valid {n} min.`.
///
/// With a template: the placeholders are filled; a message whose code and link the
/// template both leave out is refused (permanent).
pub(crate) fn render(
    template: Option<&str>,
    message: &ProvisionMessage,
) -> Result<String, TransportError> {
    let code = message.code().map(|c| c.expose());
    let link = message.links().best();
    let minutes = message.validity_minutes().to_string();
    match template {
        Some(t) => {
            let carries = (code.is_some() && t.contains("{code}"))
                || (link.is_some() && t.contains("{link}"));
            if !carries {
                return Err(TransportError::permanent(
                    format!(
                        "SMS text template has no placeholder for what the policy sends to \
                         user \"{}\" ({})",
                        message.username,
                        match (code.is_some(), link.is_some()) {
                            (true, true) => "code and link",
                            (true, false) => "code only",
                            (false, true) => "link only",
                            (false, false) => "neither code nor link",
                        }
                    ),
                    None,
                ));
            }
            Ok(fill(
                t,
                &[
                    ("code", code.unwrap_or("")),
                    ("link", link.unwrap_or("")),
                    ("validity_minutes", &minutes),
                    ("username", message.username.as_str()),
                ],
            ))
        }
        None => match (code, link) {
            (Some(code), Some(link)) => {
                let full = format!("Provision code: {code} {link} Valid {minutes} min.");
                let s = segments(&full);
                if s.count == 1 {
                    Ok(full)
                } else {
                    tracing::debug!(
                        user = %message.username,
                        segments = s.count,
                        "SMS text with the link would not fit one segment; sending the code only"
                    );
                    Ok(format!("Provision code: {code} Valid {minutes} min."))
                }
            }
            (Some(code), None) => Ok(format!("Provision code: {code} Valid {minutes} min.")),
            (None, Some(link)) => Ok(format!("Provision: {link} Valid {minutes} min.")),
            (None, None) => Err(TransportError::permanent(
                format!(
                    "provision message for user \"{}\" has neither a code nor a link to send",
                    message.username
                ),
                None,
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use swivel_provision::{Destination, ProvisionCode, Username};
    use time::OffsetDateTime;

    use super::*;

    fn msg(code: Option<&str>, link: Option<&str>) -> ProvisionMessage {
        ProvisionMessage::new(
            Username::parse("alice").unwrap(),
            Destination::sms("+15551234567").unwrap(),
            code.map(ProvisionCode::new),
            ProvisionMessage::links_for_test(None, None, link),
            OffsetDateTime::now_utc(),
            600,
        )
    }

    #[test]
    fn default_text_with_code_and_short_link_fits_one_gsm7_segment() {
        let link = "https://auth.example.com/smc/complete/?site=acme-prod&code=7Q4XK2M9PL";
        let text = render(None, &msg(Some("7Q4XK2M9PL"), Some(link))).unwrap();
        assert_eq!(
            text,
            format!("Provision code: 7Q4XK2M9PL {link} Valid 10 min.")
        );
        let s = segments(&text);
        assert_eq!((s.encoding, s.count), (crate::SmsEncoding::Gsm7, 1));
    }

    #[test]
    fn default_text_drops_a_long_link_to_stay_in_one_segment() {
        let link = format!(
            "https://auth.example.com/{}?code=7Q4XK2M9PL",
            "x".repeat(150)
        );
        let text = render(None, &msg(Some("7Q4XK2M9PL"), Some(&link))).unwrap();
        assert_eq!(text, "Provision code: 7Q4XK2M9PL Valid 10 min.");
    }

    #[test]
    fn default_text_code_only_and_link_only() {
        assert_eq!(
            render(None, &msg(Some("1234"), None)).unwrap(),
            "Provision code: 1234 Valid 10 min."
        );
        assert_eq!(
            render(None, &msg(None, Some("https://a.example/p?c=1"))).unwrap(),
            "Provision: https://a.example/p?c=1 Valid 10 min."
        );
        let err = render(None, &msg(None, None)).unwrap_err();
        assert!(!err.is_transient());
    }

    #[test]
    fn template_fills_every_placeholder_once() {
        let t = "{username}: {code} / {link} ({validity_minutes} min) {unknown";
        let text = render(Some(t), &msg(Some("C0DE"), Some("https://l.example/x"))).unwrap();
        assert_eq!(text, "alice: C0DE / https://l.example/x (10 min) {unknown");
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        assert_eq!(fill("{a}{b}", &[("a", "{b}"), ("b", "x")]), "{b}x");
    }

    #[test]
    fn template_without_what_the_policy_sends_is_refused_without_the_code() {
        let err = render(Some("Link: {link}"), &msg(Some("SECRET99"), None)).unwrap_err();
        assert!(!err.is_transient());
        assert!(!err.to_string().contains("SECRET99"), "{err}");
    }

    #[test]
    fn template_checks() {
        assert!(check_text_template("Code {code}").is_ok());
        assert!(check_text_template("Open {link}").is_ok());
        let e = check_text_template("Hello {username}").unwrap_err();
        assert_eq!(e.setting, "text");
        let e = check_text_template("Code {cod} {code}").unwrap_err();
        assert!(e.problem.contains("{cod}"), "{e}");
        // Braces that are not placeholders are fine.
        assert!(check_text_template("{code} {X-1} {}").is_ok());
    }
}
