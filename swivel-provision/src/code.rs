//! Secrets: the server key, provision codes and provision Ids; how they are made (ChaCha20
//! seeded from the OS), hashed (HMAC-SHA256 under the server key) and compared (in
//! constant time).

use std::fmt;

use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::policy::{CodeAlphabet, CodeFormat};

type HmacSha256 = Hmac<Sha256>;

/// The server's secret key: 32 bytes. Codes and provision Ids are stored as HMACs under
/// keys derived from it, and security strings are derived from it, so a copy of the
/// database without the key gives an attacker nothing to redeem.
///
/// # Security
/// Keep it outside the database (a file with mode 0600, a secret manager). Every server
/// instance of a cluster needs the same key. Losing it invalidates every pending code and
/// every provisioned device. The raw key is zeroed when the `ServerKey` is dropped; the
/// pre-keyed HMAC state it also holds (as good as the key for HMAC) is not.
pub struct ServerKey {
    key: SecretBox<[u8; 32]>,
    /// HMAC-SHA256 keyed with `key` and nothing else absorbed: cloned for each derivation,
    /// which saves hashing the inner and outer key blocks every time.
    keyed: HmacSha256,
}

impl ServerKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        ChaCha20Rng::from_os_rng().fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let keyed = HmacSha256::new_from_slice(&bytes).expect("any key size");
        Self {
            key: SecretBox::new(Box::new(bytes)),
            keyed,
        }
    }

    /// A key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidInput {
            field: "server key",
            reason: "must be exactly 32 bytes",
        })?;
        Ok(Self::from_bytes(arr))
    }

    /// The raw key bytes, to save the key. Handle with care.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        self.key.expose_secret()
    }

    /// HMAC-SHA256 of `parts` under a subkey for `purpose`. Hosts may use it to derive keys
    /// of their own (for example to encrypt PINs) with a purpose string of their own.
    pub fn derive(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(&(purpose.len() as u32).to_be_bytes());
        mac.update(purpose.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl Clone for ServerKey {
    fn clone(&self) -> Self {
        Self::from_bytes(*self.expose_bytes())
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey([REDACTED])")
    }
}

/// A provision code, as sent to the user and typed into the device. Secret: `Debug` shows
/// nothing of it and there is no `Display`.
#[derive(Clone)]
pub struct ProvisionCode(SecretString);

impl ProvisionCode {
    /// Wraps a code typed by a user or read from a message (surrounding blanks and inner
    /// spaces or dashes, which users add for readability, are removed).
    pub fn new(raw: &str) -> Self {
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        Self(cleaned.into())
    }

    /// The code. Handle with care: never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// A new random code of the given format.
    pub(crate) fn generate(format: &CodeFormat, rng: &mut ChaCha20Rng) -> Self {
        let alphabet = format.alphabet.symbols();
        let n = alphabet.len() as u32;
        let mut out = String::with_capacity(format.length as usize);
        while out.len() < format.length as usize {
            out.push(alphabet[uniform_below(n, || rng.next_u32()) as usize] as char);
        }
        Self(out.into())
    }

    /// Whether the code has the shape of the format (length and alphabet).
    pub(crate) fn fits(&self, format: &CodeFormat) -> bool {
        let code = self.expose();
        code.len() == format.length as usize
            && match format.alphabet {
                CodeAlphabet::Digits => code.bytes().all(|b| b.is_ascii_digit()),
                CodeAlphabet::Alphanumeric => code.bytes().all(|b| {
                    CodeAlphabet::Alphanumeric
                        .symbols()
                        .contains(&b.to_ascii_uppercase())
                }),
            }
    }

    /// The normalised form that is hashed (upper case for the alphanumeric alphabet).
    fn normalised(&self) -> String {
        self.expose().to_ascii_uppercase()
    }
}

impl fmt::Debug for ProvisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProvisionCode([REDACTED])")
    }
}

/// The provision Id a device receives when it redeems a code: 128 random bits, 32 hex
/// digits. The device presents it to download its security strings. Secret: only its keyed
/// hash is stored.
#[derive(Clone)]
pub struct ProvisionId(SecretString);

impl ProvisionId {
    /// Wraps an Id received from a device.
    pub fn new(raw: &str) -> Self {
        Self(raw.trim().to_owned().into())
    }

    /// The Id. Handle with care: never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub(crate) fn generate(rng: &mut ChaCha20Rng) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes).into())
    }
}

impl fmt::Debug for ProvisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProvisionId([REDACTED])")
    }
}

macro_rules! hash_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The hash as 64 lower-case hex digits (how stores keep it).
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex digits.
            pub fn from_hex(s: &str) -> Result<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidInput {
                    field: stringify!($name),
                    reason: "must be 64 hex digits",
                })?;
                Ok(Self(out))
            }

            /// Constant-time equality.
            pub fn ct_eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl From<$name> for String {
            fn from(h: $name) -> String {
                h.to_hex()
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::from_hex(&s)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // A short prefix is enough to tell records apart in a debugger.
                write!(f, concat!(stringify!($name), "({}…)"), &self.to_hex()[..8])
            }
        }
    };
}

hash_type!(
    /// HMAC-SHA256 of a provision code (and its user) under the server key.
    CodeHash
);
hash_type!(
    /// HMAC-SHA256 of a provision Id under the server key: what stores index to find the
    /// device a `SecurityStrings` request comes from.
    IdHash
);

impl ServerKey {
    /// The stored form of a code for a user.
    pub fn code_hash(&self, username: &str, code: &ProvisionCode) -> CodeHash {
        CodeHash(self.derive(
            "swivel-provision/code/v1",
            &[username.as_bytes(), code.normalised().as_bytes()],
        ))
    }

    /// The stored form of a provision Id.
    pub fn id_hash(&self, id: &ProvisionId) -> IdHash {
        IdHash(self.derive("swivel-provision/id/v1", &[id.expose().as_bytes()]))
    }

    /// The seed of a device's security strings of one generation.
    pub(crate) fn strings_seed(&self, device: &IdHash, generation: u32) -> [u8; 32] {
        self.derive(
            "swivel-provision/strings/v1",
            &[&device.0, &generation.to_be_bytes()],
        )
    }
}

/// A uniform number below `n` (at least 1) from the 32-bit words `next` draws, by rejection
/// sampling: a word below the largest multiple of `n` that fits is taken modulo `n` (no
/// modulo bias); a word at or above it is dropped and another drawn.
fn uniform_below(n: u32, mut next: impl FnMut() -> u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let v = next();
        if v < zone {
            return v % n;
        }
    }
}

/// A ChaCha20 generator seeded from the operating system.
pub(crate) fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_os_rng()
}

/// Secrets drawn from one thread's generator before it is seeded again from the operating
/// system.
const RESEED_AFTER: u32 = 1024;

thread_local! {
    /// Each thread's ChaCha20 generator and the secrets drawn from it since its seed.
    static THREAD_RNG: std::cell::RefCell<Option<(ChaCha20Rng, u32)>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's ChaCha20 generator, seeded from the operating system on first
/// use and again after every [`RESEED_AFTER`] calls. One `getrandom` call per code and per
/// provision Id costs about a twentieth of a whole provisioning cycle; this keeps the
/// generator a CSPRNG with a fresh OS seed at a bounded distance. A process that forks
/// must not draw secrets in both parent and child from a generator made before the fork
/// (the library never forks).
pub(crate) fn with_thread_rng<T>(f: impl FnOnce(&mut ChaCha20Rng) -> T) -> T {
    THREAD_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(_, uses)| *uses >= RESEED_AFTER) {
            *slot = Some((os_rng(), 0));
        }
        let (rng, uses) = slot.as_mut().expect("seeded above");
        *uses += 1;
        f(rng)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_is_hmac_sha256_of_length_prefixed_parts() {
        let key = ServerKey::from_bytes([7; 32]);
        let mut mac = HmacSha256::new_from_slice(&[7; 32]).unwrap();
        for part in [&b"purpose"[..], b"one", b""] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(key.derive("purpose", &[b"one", b""]), expected);
        // The pre-keyed state is not consumed: the same call gives the same answer.
        assert_eq!(key.derive("purpose", &[b"one", b""]), expected);
        assert_ne!(key.derive("purpose", &[b"one"]), expected);
        assert_eq!(key.clone().derive("purpose", &[b"one", b""]), expected);
    }

    #[test]
    fn the_thread_generator_is_seeded_again_after_its_budget() {
        std::thread::spawn(|| {
            let uses = || THREAD_RNG.with(|c| c.borrow().as_ref().map(|(_, n)| *n));
            assert_eq!(uses(), None, "a new thread starts without a generator");
            let first = with_thread_rng(|rng| rng.next_u64());
            let second = with_thread_rng(|rng| rng.next_u64());
            assert_ne!(first, second);
            for _ in 2..RESEED_AFTER {
                with_thread_rng(|rng| rng.next_u32());
            }
            assert_eq!(uses(), Some(RESEED_AFTER));
            with_thread_rng(|rng| rng.next_u32());
            assert_eq!(uses(), Some(1), "seeded again from the OS");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn threads_draw_different_secrets() {
        let draw = || {
            std::thread::spawn(|| with_thread_rng(|rng| rng.next_u64()))
                .join()
                .unwrap()
        };
        assert_ne!(draw(), draw());
    }
    use crate::policy::CodeFormat;

    #[test]
    fn codes_have_the_format_and_differ() {
        let mut rng = os_rng();
        let f = CodeFormat::default();
        let a = ProvisionCode::generate(&f, &mut rng);
        let b = ProvisionCode::generate(&f, &mut rng);
        assert_eq!(a.expose().len(), 10);
        assert!(a.fits(&f));
        assert_ne!(a.expose(), b.expose());
        let alnum = CodeFormat {
            length: 8,
            alphabet: CodeAlphabet::Alphanumeric,
        };
        let c = ProvisionCode::generate(&alnum, &mut rng);
        assert!(c.fits(&alnum));
    }

    #[test]
    fn hashes_are_keyed_and_compare() {
        let k1 = ServerKey::from_bytes([1; 32]);
        let k2 = ServerKey::from_bytes([2; 32]);
        let code = ProvisionCode::new("12345 67890");
        assert_eq!(code.expose(), "1234567890");
        let h1 = k1.code_hash("alice", &code);
        assert!(h1.ct_eq(&k1.code_hash("alice", &ProvisionCode::new("1234567890"))));
        assert!(!h1.ct_eq(&k2.code_hash("alice", &code)));
        assert!(!h1.ct_eq(&k1.code_hash("bob", &code)));
        assert_eq!(CodeHash::from_hex(&h1.to_hex()).unwrap(), h1);
    }

    #[test]
    fn secrets_do_not_debug() {
        let code = ProvisionCode::new("1234567890");
        let id = ProvisionId::new("00112233445566778899aabbccddeeff");
        let key = ServerKey::from_bytes([7; 32]);
        for s in [format!("{code:?}"), format!("{id:?}"), format!("{key:?}")] {
            assert!(!s.contains("1234567890") && !s.contains("0011223344") && !s.contains("0707"));
            assert!(s.contains("REDACTED"));
        }
    }
}

#[cfg(test)]
mod boundary_tests {
    use super::*;
    use crate::policy::CodeFormat;

    /// Draws from `words` in order; panics if asked for more.
    fn words(words: &[u32]) -> impl FnMut() -> u32 + '_ {
        let mut it = words.iter();
        move || *it.next().expect("drew more words than expected")
    }

    #[test]
    fn rejection_drops_exactly_the_words_that_would_bias() {
        for n in [10u32, 31] {
            // The largest multiple of n that fits: the first word dropped.
            let zone = u32::MAX / n * n;
            assert_eq!(uniform_below(n, words(&[zone - 1])), n - 1, "n = {n}");
            assert_eq!(uniform_below(n, words(&[zone, 5])), 5, "n = {n}");
            assert_eq!(uniform_below(n, words(&[u32::MAX, 0])), 0, "n = {n}");
            assert_eq!(uniform_below(n, words(&[n + 3])), 3, "n = {n}");
        }
    }

    #[test]
    fn codes_of_a_fixed_seed_are_known() {
        // The first words of ChaCha20's keystream for the zero key (RFC 7539, A.1, test
        // vector 1) are 0xade0b876 and 0x903df1a0: 2917185654 and 2419978656, whose
        // remainders by 10 are 4 and 6.
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let digits = ProvisionCode::generate(&CodeFormat::default(), &mut rng);
        assert_eq!(digits.expose(), "4621340561");
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let alnum = CodeFormat {
            length: 12,
            alphabet: CodeAlphabet::Alphanumeric,
        };
        assert_eq!(
            ProvisionCode::generate(&alnum, &mut rng).expose(),
            "3N55WA4SKH5V"
        );
    }

    #[test]
    fn a_code_fits_only_with_both_the_length_and_the_alphabet() {
        let digits = CodeFormat::default();
        assert_eq!(digits.length, 10);
        let fits = |code: &str, f: &CodeFormat| ProvisionCode::new(code).fits(f);
        assert!(fits("0123456789", &digits));
        assert!(fits("01234-56789", &digits), "dashes are removed");
        assert!(!fits("012345678", &digits), "one digit short");
        assert!(!fits("01234567890", &digits), "one digit long");
        assert!(!fits("01234A6789", &digits), "a letter in a digit code");
        assert!(
            !fits("ABCDEFGHJK", &digits),
            "letters only, of the right length"
        );
        assert!(!fits("", &digits));
        let alnum = CodeFormat {
            length: 8,
            alphabet: CodeAlphabet::Alphanumeric,
        };
        assert!(fits("ABCD2345", &alnum));
        assert!(fits("abcd2345", &alnum), "lower case is the same code");
        assert!(!fits("ABCD234", &alnum), "one symbol short");
        assert!(!fits("ABCD23456", &alnum), "one symbol long");
        assert!(!fits("ABCD2340", &alnum), "0 is not in the alphabet");
        assert!(!fits("ABCD234O", &alnum), "nor O");
        assert!(!fits("ABCD23_5", &alnum), "nor punctuation");
    }

    #[test]
    fn strings_seeds_differ_by_key_device_and_generation() {
        let key = ServerKey::from_bytes([7; 32]);
        let seed = key.strings_seed(&IdHash([1; 32]), 1);
        let expected = key.derive("swivel-provision/strings/v1", &[&[1; 32], &[0, 0, 0, 1]]);
        assert_eq!(seed, expected);
        assert_ne!(
            seed,
            key.strings_seed(&IdHash([2; 32]), 1),
            "another device"
        );
        assert_ne!(
            seed,
            key.strings_seed(&IdHash([1; 32]), 2),
            "another generation"
        );
        let other = ServerKey::from_bytes([8; 32]);
        assert_ne!(seed, other.strings_seed(&IdHash([1; 32]), 1), "another key");
    }

    #[test]
    fn a_typed_code_loses_only_blanks_and_dashes() {
        assert_eq!(ProvisionCode::new(" 12 34-56\t").expose(), "123456");
        assert_eq!(ProvisionCode::new("ab.c").expose(), "ab.c");
        assert_eq!(ProvisionCode::new("abc").normalised(), "ABC");
        assert_eq!(ProvisionId::new(" 00ff \n").expose(), "00ff");
    }
}
