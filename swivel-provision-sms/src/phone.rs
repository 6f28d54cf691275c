//! E.164 phone number checks.

use swivel_provision::TransportError;

/// Whether `number` is an E.164 number: `+`, a non-zero digit, then up to 14 more digits
/// (`^\+[1-9]\d{1,14}$`). No spaces, dashes or brackets.
///
/// ```
/// use swivel_provision_sms::is_e164;
/// assert!(is_e164("+447700900123"));
/// assert!(!is_e164("07700 900123"));
/// ```
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Checks a destination number before anything is sent; the error names the number and is
/// permanent.
pub(crate) fn check_destination(number: &str) -> Result<(), TransportError> {
    if is_e164(number) {
        Ok(())
    } else {
        Err(TransportError::permanent(
            format!(
                "invalid SMS destination \"{}\": not an E.164 phone number (+ and 2 to 15 digits, \
                 no leading 0)",
                number.escape_default()
            ),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164() {
        for n in ["+12", "+15551234567", "+447700900123", "+123456789012345"] {
            assert!(is_e164(n), "{n}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for n in [
            "",
            "+",
            "+1",
            "15551234567",
            "+05551234567",
            "+1234567890123456",
            "+1 555 123 4567",
            "+1-555-1234567",
            "+1555123456a",
            "++15551234567",
            "+１２３",
        ] {
            assert!(!is_e164(n), "{n}");
        }
    }

    #[test]
    fn error_names_the_number_and_is_permanent() {
        let err = check_destination("0800 123").unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("\"0800 123\""), "{err}");
    }
}
