//! The policy: Swivel's *Policy / Self-Reset* settings and the rest of what an operator
//! can tune. Every field is checked when it is set or deserialised; an out-of-range value
//! is a [`PolicyError`] naming the setting and its range.

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::types::SiteId;

/// Smallest and largest provision code validity, in seconds (as in Swivel).
pub const VALIDITY_RANGE: (u32, u32) = (10, 1_000_000);

/// How a provision code looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CodeFormatRaw")]
pub struct CodeFormat {
    /// Number of symbols.
    pub length: u8,
    /// Which symbols.
    pub alphabet: CodeAlphabet,
}

#[derive(Deserialize)]
struct CodeFormatRaw {
    length: u8,
    alphabet: CodeAlphabet,
}

impl TryFrom<CodeFormatRaw> for CodeFormat {
    type Error = PolicyError;
    fn try_from(raw: CodeFormatRaw) -> Result<Self, PolicyError> {
        CodeFormat::new(raw.length, raw.alphabet)
    }
}

impl CodeFormat {
    /// At least this many bits of entropy per code.
    pub const MIN_BITS: f64 = 20.0;

    /// A checked format: at most 32 symbols and at least 20 bits of entropy.
    pub fn new(length: u8, alphabet: CodeAlphabet) -> Result<Self, PolicyError> {
        let f = Self { length, alphabet };
        if length == 0 || length > 32 || f.entropy_bits() < Self::MIN_BITS {
            let min = (Self::MIN_BITS / (alphabet.symbols().len() as f64).log2()).ceil() as u64;
            return Err(PolicyError::range("code_length", min, 32, length));
        }
        Ok(f)
    }

    /// Bits of entropy of one code.
    pub fn entropy_bits(&self) -> f64 {
        self.length as f64 * (self.alphabet.symbols().len() as f64).log2()
    }
}

impl Default for CodeFormat {
    fn default() -> Self {
        Self {
            length: 10,
            alphabet: CodeAlphabet::Digits,
        }
    }
}

/// The symbols a provision code is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeAlphabet {
    /// `0`–`9` (what users of Swivel expect; easy to type on a phone).
    Digits,
    /// Upper-case letters and digits without look-alikes (no `0 O 1 I L`); typed codes are
    /// matched case-insensitively.
    Alphanumeric,
}

impl CodeAlphabet {
    pub(crate) fn symbols(&self) -> &'static [u8] {
        match self {
            CodeAlphabet::Digits => b"0123456789",
            CodeAlphabet::Alphanumeric => b"23456789ABCDEFGHJKMNPQRSTUVWXYZ",
        }
    }
}

/// What the provision message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Only the code.
    CodeOnly,
    /// Only the Provision URL (falls back to the code when no link is configured).
    UrlOnly,
    /// The Provision URL and the code.
    #[default]
    Both,
}

/// What a device is told when a `provision` request fails (DESIGN §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceErrors {
    /// Every failed `provision` answers `Provision Failure`, whatever the cause (unknown
    /// user, no pending code, wrong or late code, locked account): nobody learns who has an
    /// account or a pending code. The event log keeps the cause.
    #[default]
    Uniform,
    /// The seed's words: `Invalid Username`, `Invalid Provision Code`, `Provision
    /// Failure`. Tells an attacker which usernames exist and which have a pending code;
    /// for deployments where usernames are public anyway.
    Detailed,
}

/// The Provision URL templates, as Swivel sets them under Policy / Self-Reset.
///
/// Each template is an absolute `http(s)` or app-scheme URL; `{code}`, `{site}` and
/// `{user}` are replaced (URL-encoded) when a message is made. When a template has no
/// placeholder, the value is appended (Swivel's behaviour).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkTemplates {
    /// *provision*: the code is appended.
    pub provision: Option<String>,
    /// *getsettings*: the Site ID is appended.
    pub getsettings: Option<String>,
    /// *complete*: Site ID and code.
    pub complete: Option<String>,
}

impl LinkTemplates {
    /// Templates for a host serving the landing pages under `base` (e.g.
    /// `https://auth.example.com`): `{base}/smc/provision/?user={user}&code={code}` and so on.
    pub fn for_base_url(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            provision: Some(format!("{base}/smc/provision/?user={{user}}&code={{code}}")),
            getsettings: Some(format!("{base}/smc/getsettings/?site={{site}}")),
            complete: Some(format!(
                "{base}/smc/complete/?site={{site}}&user={{user}}&code={{code}}"
            )),
        }
    }

    fn check(&self) -> Result<(), PolicyError> {
        for (setting, t) in [
            ("links.provision", &self.provision),
            ("links.getsettings", &self.getsettings),
            ("links.complete", &self.complete),
        ] {
            if let Some(t) = t {
                let ok_scheme = t
                    .split_once("://")
                    .is_some_and(|(s, rest)| !s.is_empty() && !rest.is_empty());
                if !ok_scheme || t.len() > 2048 || t.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(PolicyError {
                        setting,
                        problem: format!("must be an absolute URL without spaces, got {t:?}"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A mobile-client policy sent with the security strings
/// (`<Policy id=… section=… show=…>value</Policy>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MobilePolicy {
    /// Policy id, e.g. `PinLength`.
    pub id: String,
    /// Section of the client's settings, e.g. `Security`.
    pub section: String,
    /// Whether the client shows the setting to the user.
    pub show: bool,
    /// The value.
    pub value: String,
}

/// The provisioning policy. Build it with [`Policy::default`] and the setters, deserialise
/// it (every field is checked), or change one setting by name with [`Policy::set`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Allow user self-provision of mobile client (Swivel default: No).
    pub allow_self_provision: bool,
    /// Log device information when provisioning (Swivel default: No).
    pub log_device_info: bool,
    /// Provision code validity period in seconds (default 600, range 10–1,000,000).
    #[serde(deserialize_with = "de_validity")]
    validity_secs: u32,
    /// Code length and alphabet (default 10 digits; at least 20 bits of entropy).
    pub code: CodeFormat,
    /// Wrong attempts allowed per code before it is burned (default 5, range 1–100).
    #[serde(deserialize_with = "de_attempts")]
    max_attempts: u8,
    /// Wrong one-time codes per account from one client address in a minute before that
    /// address is refused for that account until the minute ends (default 5, range 1–100).
    /// The host counts them (the core sees no address): the example server's `/login`.
    #[serde(deserialize_with = "de_attempts_otc")]
    max_otc_failures: u8,
    /// Seconds between two self-service requests of one user (default 60, range 0–86,400).
    #[serde(deserialize_with = "de_interval")]
    self_service_interval_secs: u32,
    /// Failed redeems and one-time codes in a row, across codes, before the account is
    /// locked until an administrator unlocks it (NIST SP 800-63B §5.2.2; default 100,
    /// range 1–100).
    #[serde(deserialize_with = "de_account_failures")]
    max_account_failures: u8,
    /// What a device is told when `provision` fails (default: uniform `Provision Failure`).
    pub device_errors: DeviceErrors,
    /// What the message carries (default: Provision URL and code).
    pub delivery: DeliveryMode,
    /// Provision URL templates (none by default: messages then carry only the code).
    pub links: LinkTemplates,
    /// The Site ID put into the *getsettings* and *complete* links.
    pub site_id: Option<SiteId>,
    /// Mobile-client policies sent with the security strings.
    pub mobile_policies: Vec<MobilePolicy>,
    /// Answer `{context}/TokenIndex` (the next index a device should use; default Yes).
    pub token_index: bool,
    /// Send provision code as security string (Swivel default: No): the code goes to the
    /// user's security-string destination instead of the alert one (each falls back to the
    /// other when the user has none with a transport).
    pub provision_code_as_security_string: bool,
    /// Tell the user when a new device was bound to the account (default Yes; NIST SP
    /// 800-63B §6.1.2.1): after each successful redeem a short notice (when, which device
    /// information was logged, what to do if it was not them; no code, no Id) goes to the
    /// user's other destination, or to the same one.
    pub notify_device_bound: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_self_provision: false,
            log_device_info: false,
            validity_secs: 600,
            code: CodeFormat::default(),
            max_attempts: 5,
            max_otc_failures: 5,
            self_service_interval_secs: 60,
            max_account_failures: 100,
            device_errors: DeviceErrors::Uniform,
            delivery: DeliveryMode::Both,
            links: LinkTemplates::default(),
            site_id: None,
            mobile_policies: Vec::new(),
            token_index: true,
            provision_code_as_security_string: false,
            notify_device_bound: true,
        }
    }
}

fn check_validity(v: u64) -> Result<u32, PolicyError> {
    let (min, max) = VALIDITY_RANGE;
    if v < min as u64 || v > max as u64 {
        return Err(PolicyError::range(
            "validity_secs",
            min as u64,
            max as u64,
            v,
        ));
    }
    Ok(v as u32)
}

fn check_attempts(v: u64) -> Result<u8, PolicyError> {
    if !(1..=100).contains(&v) {
        return Err(PolicyError::range("max_attempts", 1, 100, v));
    }
    Ok(v as u8)
}

fn check_otc_failures(v: u64) -> Result<u8, PolicyError> {
    if !(1..=100).contains(&v) {
        return Err(PolicyError::range("max_otc_failures", 1, 100, v));
    }
    Ok(v as u8)
}

fn check_account_failures(v: u64) -> Result<u8, PolicyError> {
    if !(1..=100).contains(&v) {
        return Err(PolicyError::range("max_account_failures", 1, 100, v));
    }
    Ok(v as u8)
}

fn de_account_failures<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    check_account_failures(u64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_attempts_otc<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    check_otc_failures(u64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn check_interval(v: u64) -> Result<u32, PolicyError> {
    if v > 86_400 {
        return Err(PolicyError::range(
            "self_service_interval_secs",
            0,
            86_400,
            v,
        ));
    }
    Ok(v as u32)
}

fn de_validity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    check_validity(u64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_attempts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    check_attempts(u64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    check_interval(u64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn parse_bool(setting: &'static str, value: &str) -> Result<bool, PolicyError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        other => Err(PolicyError {
            setting,
            problem: format!("must be Yes or No, got {other:?}"),
        }),
    }
}

fn parse_num(setting: &'static str, value: &str) -> Result<u64, PolicyError> {
    value.trim().parse::<u64>().map_err(|_| PolicyError {
        setting,
        problem: format!("must be a whole number, got {:?}", value.trim()),
    })
}

impl Policy {
    /// The names [`Policy::set`] accepts.
    pub const KEYS: &'static [&'static str] = &[
        "allow_self_provision",
        "log_device_info",
        "validity_secs",
        "code_length",
        "code_alphabet",
        "max_attempts",
        "max_otc_failures",
        "self_service_interval_secs",
        "max_account_failures",
        "device_errors",
        "delivery",
        "links.provision",
        "links.getsettings",
        "links.complete",
        "site_id",
        "token_index",
        "notify_device_bound",
        "provision_code_as_security_string",
    ];

    /// Provision code validity period in seconds.
    pub fn validity_secs(&self) -> u32 {
        self.validity_secs
    }

    /// Sets the validity period (10–1,000,000 s).
    pub fn set_validity_secs(&mut self, secs: u64) -> Result<(), PolicyError> {
        self.validity_secs = check_validity(secs)?;
        Ok(())
    }

    /// Wrong attempts allowed per code.
    pub fn max_attempts(&self) -> u8 {
        self.max_attempts
    }

    /// Sets the wrong attempts allowed per code (1–100).
    pub fn set_max_attempts(&mut self, n: u64) -> Result<(), PolicyError> {
        self.max_attempts = check_attempts(n)?;
        Ok(())
    }

    /// Wrong one-time codes per account from one client address in a minute before the
    /// host refuses that address for that account until the minute ends. Not a limit on
    /// the device: a stranger could spend that one and block the user's right code.
    pub fn max_otc_failures(&self) -> u8 {
        self.max_otc_failures
    }

    /// Sets the wrong one-time codes per account and client address in a minute (1–100).
    pub fn set_max_otc_failures(&mut self, n: u64) -> Result<(), PolicyError> {
        self.max_otc_failures = check_otc_failures(n)?;
        Ok(())
    }

    /// Failed attempts in a row (redeems and one-time codes, across codes) before the
    /// account is locked.
    pub fn max_account_failures(&self) -> u8 {
        self.max_account_failures
    }

    /// Sets the failed attempts in a row before the account is locked (1–100).
    pub fn set_max_account_failures(&mut self, n: u64) -> Result<(), PolicyError> {
        self.max_account_failures = check_account_failures(n)?;
        Ok(())
    }

    /// Seconds between two self-service requests of one user.
    pub fn self_service_interval_secs(&self) -> u32 {
        self.self_service_interval_secs
    }

    /// Sets the seconds between two self-service requests of one user (0–86,400).
    pub fn set_self_service_interval_secs(&mut self, secs: u64) -> Result<(), PolicyError> {
        self.self_service_interval_secs = check_interval(secs)?;
        Ok(())
    }

    /// Changes one setting by name (see [`Policy::KEYS`]), from text as an operator types it
    /// (`Yes`/`No` for switches, an empty value clears a link or the Site ID). Nothing
    /// changes when the value is refused.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), PolicyError> {
        let mut next = self.clone();
        let empty = value.trim().is_empty();
        match key {
            "allow_self_provision" => {
                next.allow_self_provision = parse_bool("allow_self_provision", value)?
            }
            "log_device_info" => next.log_device_info = parse_bool("log_device_info", value)?,
            "notify_device_bound" => {
                next.notify_device_bound = parse_bool("notify_device_bound", value)?
            }
            "validity_secs" => next.set_validity_secs(parse_num("validity_secs", value)?)?,
            "max_attempts" => next.set_max_attempts(parse_num("max_attempts", value)?)?,
            "max_otc_failures" => {
                next.set_max_otc_failures(parse_num("max_otc_failures", value)?)?
            }
            "self_service_interval_secs" => next
                .set_self_service_interval_secs(parse_num("self_service_interval_secs", value)?)?,
            "max_account_failures" => {
                next.set_max_account_failures(parse_num("max_account_failures", value)?)?
            }
            "device_errors" => {
                next.device_errors = match value.trim().to_ascii_lowercase().as_str() {
                    "uniform" => DeviceErrors::Uniform,
                    "detailed" => DeviceErrors::Detailed,
                    other => {
                        return Err(PolicyError {
                            setting: "device_errors",
                            problem: format!("must be uniform or detailed, got {other:?}"),
                        });
                    }
                }
            }
            "code_length" => {
                let n = parse_num("code_length", value)?;
                let n = u8::try_from(n).map_err(|_| PolicyError::range("code_length", 1, 32, n))?;
                next.code = CodeFormat::new(n, next.code.alphabet)?;
            }
            "code_alphabet" => {
                let alphabet = match value.trim().to_ascii_lowercase().as_str() {
                    "digits" => CodeAlphabet::Digits,
                    "alphanumeric" => CodeAlphabet::Alphanumeric,
                    other => {
                        return Err(PolicyError {
                            setting: "code_alphabet",
                            problem: format!("must be digits or alphanumeric, got {other:?}"),
                        });
                    }
                };
                next.code = CodeFormat::new(next.code.length, alphabet)?;
            }
            "delivery" => {
                next.delivery = match value.trim().to_ascii_lowercase().as_str() {
                    "code_only" | "code" => DeliveryMode::CodeOnly,
                    "url_only" | "url" => DeliveryMode::UrlOnly,
                    "both" => DeliveryMode::Both,
                    other => {
                        return Err(PolicyError {
                            setting: "delivery",
                            problem: format!("must be code_only, url_only or both, got {other:?}"),
                        });
                    }
                }
            }
            "links.provision" => next.links.provision = (!empty).then(|| value.trim().to_owned()),
            "links.getsettings" => {
                next.links.getsettings = (!empty).then(|| value.trim().to_owned())
            }
            "links.complete" => next.links.complete = (!empty).then(|| value.trim().to_owned()),
            "site_id" => {
                next.site_id = if empty {
                    None
                } else {
                    Some(SiteId::parse(value).map_err(|_| PolicyError {
                        setting: "site_id",
                        problem: "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
                    })?)
                }
            }
            "token_index" => next.token_index = parse_bool("token_index", value)?,
            "provision_code_as_security_string" => {
                next.provision_code_as_security_string =
                    parse_bool("provision_code_as_security_string", value)?
            }
            _ => {
                return Err(PolicyError {
                    setting: "policy",
                    problem: format!("unknown setting {key:?}; known: {}", Self::KEYS.join(", ")),
                });
            }
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// The value of one setting by name, as text (for display).
    pub fn get(&self, key: &str) -> Option<String> {
        let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_owned();
        Some(match key {
            "allow_self_provision" => yes_no(self.allow_self_provision),
            "log_device_info" => yes_no(self.log_device_info),
            "notify_device_bound" => yes_no(self.notify_device_bound),
            "validity_secs" => self.validity_secs.to_string(),
            "code_length" => self.code.length.to_string(),
            "code_alphabet" => match self.code.alphabet {
                CodeAlphabet::Digits => "digits".into(),
                CodeAlphabet::Alphanumeric => "alphanumeric".into(),
            },
            "max_attempts" => self.max_attempts.to_string(),
            "max_otc_failures" => self.max_otc_failures.to_string(),
            "self_service_interval_secs" => self.self_service_interval_secs.to_string(),
            "max_account_failures" => self.max_account_failures.to_string(),
            "device_errors" => match self.device_errors {
                DeviceErrors::Uniform => "uniform".into(),
                DeviceErrors::Detailed => "detailed".into(),
            },
            "delivery" => match self.delivery {
                DeliveryMode::CodeOnly => "code_only".into(),
                DeliveryMode::UrlOnly => "url_only".into(),
                DeliveryMode::Both => "both".into(),
            },
            "links.provision" => self.links.provision.clone().unwrap_or_default(),
            "links.getsettings" => self.links.getsettings.clone().unwrap_or_default(),
            "links.complete" => self.links.complete.clone().unwrap_or_default(),
            "site_id" => self
                .site_id
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            "token_index" => yes_no(self.token_index),
            "provision_code_as_security_string" => yes_no(self.provision_code_as_security_string),
            _ => return None,
        })
    }

    /// Checks the settings that depend on each other (links). Deserialisation and the
    /// setters check each value's own range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        check_validity(self.validity_secs as u64)?;
        check_attempts(self.max_attempts as u64)?;
        check_otc_failures(self.max_otc_failures as u64)?;
        check_interval(self.self_service_interval_secs as u64)?;
        check_account_failures(self.max_account_failures as u64)?;
        CodeFormat::new(self.code.length, self.code.alphabet)?;
        self.links.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_swivel() {
        let p = Policy::default();
        assert!(!p.allow_self_provision);
        assert!(!p.log_device_info);
        assert_eq!(p.validity_secs(), 600);
        assert_eq!(p.max_attempts(), 5);
        assert_eq!(p.self_service_interval_secs(), 60);
        assert_eq!(p.code, CodeFormat::default());
        assert_eq!(p.max_account_failures(), 100);
        assert_eq!(p.device_errors, DeviceErrors::Uniform);
        assert!(p.code.entropy_bits() > 33.0);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn validity_range_is_enforced_everywhere() {
        let mut p = Policy::default();
        assert!(p.set("validity_secs", "10").is_ok());
        assert!(p.set("validity_secs", "1000000").is_ok());
        let e = p.set("validity_secs", "9").unwrap_err();
        assert_eq!(e.setting, "validity_secs");
        assert!(e.to_string().contains("between 10 and 1000000"), "{e}");
        assert!(p.set("validity_secs", "1000001").is_err());
        assert!(p.set("validity_secs", "ten").is_err());
        assert_eq!(
            p.validity_secs(),
            1_000_000,
            "refused values change nothing"
        );
        let bad: Result<Policy, _> = serde_json::from_str(r#"{"validity_secs": 5}"#);
        assert!(bad.unwrap_err().to_string().contains("validity_secs"));
        let good: Policy = serde_json::from_str(r#"{"validity_secs": 30}"#).unwrap();
        assert_eq!(good.validity_secs(), 30);
    }

    #[test]
    fn entropy_floor() {
        assert!(CodeFormat::new(7, CodeAlphabet::Digits).is_ok()); // 23.3 bits
        assert!(CodeFormat::new(6, CodeAlphabet::Digits).is_err()); // 19.9 bits
        assert!(CodeFormat::new(4, CodeAlphabet::Alphanumeric).is_err());
        assert!(CodeFormat::new(5, CodeAlphabet::Alphanumeric).is_ok());
        let mut p = Policy::default();
        let e = p.set("code_length", "6").unwrap_err();
        assert_eq!(e.setting, "code_length");
        assert!(e.problem.contains("between 7 and 32"), "{e}");
        let bad: Result<Policy, _> =
            serde_json::from_str(r#"{"code": {"length": 3, "alphabet": "digits"}}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn other_settings() {
        let mut p = Policy::default();
        p.set("allow_self_provision", "Yes").unwrap();
        assert!(p.allow_self_provision);
        assert!(p.set("allow_self_provision", "maybe").is_err());
        assert!(p.set("max_attempts", "0").is_err());
        assert!(p.set("self_service_interval_secs", "86401").is_err());
        assert!(p.set("max_account_failures", "0").is_err());
        let e = p.set("max_account_failures", "101").unwrap_err();
        assert!(e.to_string().contains("between 1 and 100"), "{e}");
        p.set("max_account_failures", "20").unwrap();
        assert_eq!(p.max_account_failures(), 20);
        p.set("device_errors", "Detailed").unwrap();
        assert_eq!(p.device_errors, DeviceErrors::Detailed);
        assert!(p.set("device_errors", "verbose").is_err());
        let bad: Result<Policy, _> = serde_json::from_str(r#"{"max_account_failures": 500}"#);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("max_account_failures")
        );
        p.set("delivery", "code_only").unwrap();
        assert_eq!(p.delivery, DeliveryMode::CodeOnly);
        assert!(p.set("links.provision", "not a url").is_err());
        p.set("links.provision", "https://a.example/smc/provision/?code=")
            .unwrap();
        p.set("site_id", "DEMO").unwrap();
        assert_eq!(p.get("site_id").unwrap(), "DEMO");
        assert!(
            p.set("nope", "1")
                .unwrap_err()
                .problem
                .contains("unknown setting")
        );
        for k in Policy::KEYS {
            assert!(p.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn token_index_switch_defaults_on() {
        assert!(Policy::default().token_index);
        let old: Policy = serde_json::from_str(r#"{"log_device_info": true}"#).unwrap();
        assert!(
            old.token_index,
            "policies saved before the switch keep TokenIndex on"
        );
        let mut p = Policy::default();
        p.set("token_index", "No").unwrap();
        assert!(!p.token_index);
        assert_eq!(p.get("token_index").unwrap(), "No");
    }
}
