//! Value types that cannot hold bad values: usernames, Site IDs, destinations, device
//! information and PINs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::counter::MAX_COUNTER_KEY_BYTES;
use crate::error::{Error, Result};
use crate::settings::MAX_SETTING_KEY_BYTES;

/// The longest prefix a key made from a username may put in front of it, in bytes: the
/// example server's encrypted PINs are settings under `pin/<username>` (4 bytes). A host
/// that names a setting or a counter after a user keeps its prefix within this (a
/// compile-time check beside the prefix says so), and the key then always fits.
pub const USERNAME_KEY_PREFIX_BYTES: usize = 4;

/// The shorter of the stores' key limits: settings keys and counter keys (256 bytes each).
const SHORTEST_KEY_LIMIT: usize = if MAX_SETTING_KEY_BYTES < MAX_COUNTER_KEY_BYTES {
    MAX_SETTING_KEY_BYTES
} else {
    MAX_COUNTER_KEY_BYTES
};

/// Longest accepted username, in bytes (252): the shortest key limit of the stores (256)
/// less the room for a key's prefix ([`USERNAME_KEY_PREFIX_BYTES`]), so that every key made
/// from a username fits, and no name that [`Username::parse`] accepts can overflow one
/// later. The stores' tables have no length limit of their own (SQLite and PostgreSQL
/// `TEXT`).
pub const MAX_USERNAME_BYTES: usize = SHORTEST_KEY_LIMIT - USERNAME_KEY_PREFIX_BYTES;

/// What [`Username::parse`] says of a name over [`MAX_USERNAME_BYTES`].
const TOO_LONG: &str = "longer than 252 bytes";
const _: () = assert!(MAX_USERNAME_BYTES == 252, "update TOO_LONG and the docs");

/// `prefix` then the username: a key named after a user (a setting or a counter), which
/// always fits the stores' key limits when `prefix` is at most
/// [`USERNAME_KEY_PREFIX_BYTES`] long.
///
/// # Panics
/// When `prefix` is longer than [`USERNAME_KEY_PREFIX_BYTES`] (a host's own mistake, found
/// by its first test; check it at compile time with `const _: () =
/// assert!(PREFIX.len() <= USERNAME_KEY_PREFIX_BYTES);`).
pub fn username_key(prefix: &str, user: &Username) -> String {
    assert!(
        prefix.len() <= USERNAME_KEY_PREFIX_BYTES,
        "a key prefix longer than USERNAME_KEY_PREFIX_BYTES"
    );
    let mut key = String::with_capacity(prefix.len() + user.0.len());
    key.push_str(prefix);
    key.push_str(&user.0);
    key
}

/// Whether `c` reorders or breaks the text around it when shown: the bidirectional
/// embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) and the line
/// and paragraph separators (U+2028, U+2029). Such characters let a name look like another
/// in a console or forge a line in a log, so usernames and device fields refuse or drop
/// them like control characters.
pub fn is_bidi_or_separator(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// A username: trimmed, not empty, at most [`MAX_USERNAME_BYTES`] (252) bytes, no control
/// characters, no bidirectional controls and no line or paragraph separators
/// ([`is_bidi_or_separator`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Checks and trims a username.
    ///
    /// Empty or blank gives [`Error::UserNotSet`] (`User not set`); too long or with control
    /// characters gives [`Error::InvalidUsername`] (`Invalid Username`).
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Error::UserNotSet);
        }
        if name.len() > MAX_USERNAME_BYTES {
            return Err(Error::InvalidUsername { reason: TOO_LONG });
        }
        if name.chars().any(char::is_control) {
            return Err(Error::InvalidUsername {
                reason: "contains control characters",
            });
        }
        if name.chars().any(is_bidi_or_separator) {
            return Err(Error::InvalidUsername {
                reason: "contains bidirectional-control or line/paragraph-separator characters",
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl std::str::FromStr for Username {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

/// A Site ID: what a device sends to the SSD to find its server. 1 to 64 characters of
/// ASCII letters, digits, `-`, `_` and `.`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteId(String);

impl SiteId {
    /// Checks a Site ID (surrounding blanks are trimmed).
    pub fn parse(raw: &str) -> Result<Self> {
        let id = raw.trim();
        if id.is_empty() || id.len() > 64 {
            return Err(Error::InvalidInput {
                field: "Site ID",
                reason: "must be 1 to 64 characters",
            });
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Error::InvalidInput {
                field: "Site ID",
                reason: "may hold only letters, digits, '-', '_' and '.'",
            });
        }
        Ok(Self(id.to_owned()))
    }

    /// The Site ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SiteId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<SiteId> for String {
    fn from(value: SiteId) -> Self {
        value.0
    }
}

impl std::str::FromStr for SiteId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteId({:?})", self.0)
    }
}

/// The kind of transport a destination is reached through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Channel {
    /// An email address.
    Email,
    /// A phone number in E.164 form, for SMS.
    Sms,
}

impl Channel {
    /// `email` or `sms`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            _ => Err(Error::InvalidInput {
                field: "channel",
                reason: "must be email or sms",
            }),
        }
    }
}

/// Which of a user's two transports a destination is, as Swivel has them: the *alert*
/// transport (messages such as provision codes) and the *security string* transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The alert transport (every destination saved before purposes existed).
    #[default]
    Alert,
    /// The security string transport.
    SecurityString,
}

impl Purpose {
    fn is_alert(&self) -> bool {
        *self == Purpose::Alert
    }
}

/// Where a user receives messages: a channel, an address on it, and which of the user's
/// transports it is ([`Purpose`]).
///
/// The address is checked only for being non-empty, at most 320 bytes and free of control
/// characters; transports check it fully (email syntax, E.164) before they send anything.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    /// The channel.
    pub channel: Channel,
    /// The address on that channel.
    pub address: String,
    /// Alert or security-string transport (default alert; left out of the JSON then).
    #[serde(default, skip_serializing_if = "Purpose::is_alert")]
    pub purpose: Purpose,
}

impl Destination {
    /// Builds a destination, checking the address's basic shape.
    pub fn new(channel: Channel, address: &str) -> Result<Self> {
        let address = address.trim();
        if address.is_empty() || address.len() > 320 || address.chars().any(char::is_control) {
            return Err(Error::InvalidInput {
                field: "destination address",
                reason: "must be 1 to 320 characters without control characters",
            });
        }
        Ok(Self {
            channel,
            address: address.to_owned(),
            purpose: Purpose::Alert,
        })
    }

    /// The same destination as the user's security-string transport.
    pub fn for_security_strings(mut self) -> Self {
        self.purpose = Purpose::SecurityString;
        self
    }

    /// An email destination.
    pub fn email(address: &str) -> Result<Self> {
        Self::new(Channel::Email, address)
    }

    /// An SMS destination.
    pub fn sms(number: &str) -> Result<Self> {
        Self::new(Channel::Sms, number)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.purpose {
            Purpose::Alert => write!(f, "Destination({}:{})", self.channel, self.address),
            Purpose::SecurityString => {
                write!(f, "Destination({}:{}, strings)", self.channel, self.address)
            }
        }
    }
}

/// What a device says about itself when it provisions. Model, OS and app version are kept
/// and logged only when the policy's `log_device_info` is on; the push Id is always kept (a
/// push transport needs it) and never logged. Each field is cut to 128 characters, the
/// push Id to [`DeviceInfo::MAX_PUSH_ID_CHARS`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device model, e.g. `Pixel 8`.
    pub model: Option<String>,
    /// Operating system and version.
    pub os: Option<String>,
    /// Client application version.
    pub app_version: Option<String>,
    /// The push notification Id the client sent (`PushId`): not shown by `Debug` or
    /// `Display`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_id: Option<String>,
}

impl fmt::Debug for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceInfo")
            .field("model", &self.model)
            .field("os", &self.os)
            .field("app_version", &self.app_version)
            .field("push_id", &self.push_id.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl DeviceInfo {
    /// Builds device information, cutting each field to 128 characters and dropping control
    /// characters and empty fields.
    pub fn new(model: Option<&str>, os: Option<&str>, app_version: Option<&str>) -> Self {
        Self {
            model: clean(model, 128),
            os: clean(os, 128),
            app_version: clean(app_version, 128),
            push_id: None,
        }
    }

    /// Longest push Id kept (push service tokens run to a few hundred characters).
    pub const MAX_PUSH_ID_CHARS: usize = 512;

    /// The same device information with a push Id (cut to
    /// [`DeviceInfo::MAX_PUSH_ID_CHARS`], control characters dropped; blank is none).
    pub fn with_push_id(mut self, push_id: Option<&str>) -> Self {
        self.push_id = clean(push_id, Self::MAX_PUSH_ID_CHARS);
        self
    }

    /// Only what is kept when the policy does not log device information: the push Id.
    pub fn push_only(&self) -> Self {
        Self {
            push_id: self.push_id.clone(),
            ..Self::default()
        }
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.os.is_none()
            && self.app_version.is_none()
            && self.push_id.is_none()
    }
}

/// A device field: control characters dropped, cut to `max` characters, trimmed; blank is
/// none.
fn clean(v: Option<&str>, max: usize) -> Option<String> {
    let s: String = v?
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_or_separator(*c))
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned();
    (!s.is_empty()).then_some(s)
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [&self.model, &self.os, &self.app_version]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if parts.is_empty() {
            f.write_str("unknown device")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A user's PIN: 4 to 10 digits. Secret: no `Debug` or `Display` shows it.
#[derive(Clone)]
pub struct Pin(secrecy::SecretString);

impl Pin {
    /// Checks a PIN: 4 to 10 ASCII digits, else [`Error::InvalidPin`].
    pub fn parse(raw: &str) -> Result<Self> {
        if !(4..=10).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidPin);
        }
        Ok(Self(raw.into()))
    }

    /// The PIN's digits. Handle with care.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        assert!(matches!(Username::parse(""), Err(Error::UserNotSet)));
        assert!(matches!(Username::parse("   \t"), Err(Error::UserNotSet)));
        assert_eq!(Username::parse("  alice ").unwrap().as_str(), "alice");
        assert!(matches!(
            Username::parse("al\u{7}ice"),
            Err(Error::InvalidUsername { .. })
        ));
        assert!(Username::parse(&"a".repeat(MAX_USERNAME_BYTES)).is_ok());
        for len in [MAX_USERNAME_BYTES + 1, 256, 257] {
            assert!(matches!(
                Username::parse(&"a".repeat(len)),
                Err(Error::InvalidUsername { reason: TOO_LONG })
            ));
        }
        // Bytes, not characters: 126 two-byte characters fit, 127 do not.
        assert!(Username::parse(&"é".repeat(126)).is_ok());
        assert!(Username::parse(&"é".repeat(127)).is_err());
        assert!(TOO_LONG.contains(&MAX_USERNAME_BYTES.to_string()));
        assert_eq!(Error::UserNotSet.public_message(), "User not set");
    }

    #[test]
    fn a_key_made_from_any_username_fits_every_store() {
        let longest = Username::parse(&"é".repeat(MAX_USERNAME_BYTES / 2)).unwrap();
        let key = username_key("pin/", &longest);
        assert_eq!(key.len(), 4 + MAX_USERNAME_BYTES);
        assert!(key.len() <= MAX_SETTING_KEY_BYTES && key.len() <= MAX_COUNTER_KEY_BYTES);
        let full = username_key(&"p".repeat(USERNAME_KEY_PREFIX_BYTES), &longest);
        assert!(full.len() <= MAX_SETTING_KEY_BYTES && full.len() <= MAX_COUNTER_KEY_BYTES);
        assert!(crate::counter::check_counter_key(&full).is_ok());
    }

    #[test]
    #[should_panic(expected = "USERNAME_KEY_PREFIX_BYTES")]
    fn a_longer_key_prefix_is_a_bug() {
        let _ = username_key("pinhash/", &Username::parse("alice").unwrap());
    }

    #[test]
    fn usernames_with_bidi_controls_or_separators_are_refused() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            let name = format!("ali{c}ce");
            let e = Username::parse(&name).unwrap_err();
            assert!(matches!(e, Error::InvalidUsername { .. }), "{c:?}: {e:?}");
            assert_eq!(e.public_message(), "Invalid Username");
        }
        // Ordinary non-ASCII letters stay welcome.
        assert!(Username::parse("Zoë-Åsa").is_ok());
        let d = DeviceInfo::new(Some("Pixel\u{202E}8\u{2028}"), None, None);
        assert_eq!(d.model.as_deref(), Some("Pixel8"));
    }

    #[test]
    fn username_serde_validates() {
        let ok: Username = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(ok.as_str(), "bob");
        assert!(serde_json::from_str::<Username>("\"  \"").is_err());
    }

    #[test]
    fn site_id_rules() {
        assert!(SiteId::parse("DEMO-1.a_b").is_ok());
        assert!(SiteId::parse("").is_err());
        assert!(SiteId::parse("a b").is_err());
        assert!(SiteId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn pin_rules_and_redaction() {
        assert!(Pin::parse("123").is_err());
        assert!(Pin::parse("12345678901").is_err());
        assert!(Pin::parse("12a4").is_err());
        let pin = Pin::parse("9132").unwrap();
        assert_eq!(pin.expose(), "9132");
        assert!(!format!("{pin:?}").contains("9132"));
    }

    #[test]
    fn device_info_is_cleaned() {
        let long = "m".repeat(300);
        let d = DeviceInfo::new(Some(&long), Some(" \n"), None);
        assert_eq!(d.model.as_deref().map(str::len), Some(128));
        assert_eq!(d.os, None);
        assert_eq!(DeviceInfo::default().to_string(), "unknown device");
    }

    #[test]
    fn push_id_is_kept_cut_and_hidden() {
        let token = "t".repeat(600);
        let d = DeviceInfo::new(Some("Pixel"), None, None).with_push_id(Some(&token));
        assert_eq!(
            d.push_id.as_deref().map(str::len),
            Some(DeviceInfo::MAX_PUSH_ID_CHARS)
        );
        assert!(!d.is_empty());
        let only = d.push_only();
        assert_eq!(
            (only.model.as_deref(), only.push_id.as_ref()),
            (None, d.push_id.as_ref())
        );
        assert!(!format!("{d:?} {d}").contains("ttt"), "{d:?} {d}");
        assert_eq!(
            DeviceInfo::default().with_push_id(Some(" \u{1} ")).push_id,
            None
        );
        // Records written before the field existed still read.
        let old: DeviceInfo =
            serde_json::from_str(r#"{"model":"m","os":null,"app_version":null}"#).unwrap();
        assert_eq!(old.push_id, None);
    }
}
