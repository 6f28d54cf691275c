//! Security strings (DESIGN §8): 100 strings of 10 digits per generation, and the one-time
//! code a user makes from one of them with a PIN.

use std::fmt;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::types::Pin;

/// Strings in one set (positions 00–99).
pub const STRINGS_PER_SET: usize = 100;
/// Digits in one string.
pub const STRING_DIGITS: usize = 10;

/// Makes a set of security strings from a 32-byte seed. Must be deterministic: the same
/// seed always gives the same set (strings are derived again, never stored).
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait StringGenerator: Send + Sync + 'static {
    /// The set for `seed`, tagged with `generation`.
    fn generate(&self, seed: [u8; 32], generation: u32) -> SecurityStrings;
}

/// The default generator: ChaCha20 seeded with the seed, uniform digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChaChaStringGenerator;

impl StringGenerator for ChaChaStringGenerator {
    fn generate(&self, seed: [u8; 32], generation: u32) -> SecurityStrings {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut digits = Box::new([[0u8; STRING_DIGITS]; STRINGS_PER_SET]);
        let flat = digits.as_flattened_mut();
        let mut filled = 0;
        while filled < flat.len() {
            let Some(nine) = nine_digits(rng.next_u32()) else {
                continue;
            };
            for (d, n) in flat[filled..].iter_mut().zip(nine) {
                *d = n;
            }
            filled = (filled + 9).min(flat.len());
        }
        SecurityStrings { generation, digits }
    }
}

/// Words at or above this are rejected: 4 * 10^9 is the largest multiple of 10^9 below
/// 2^32.
const DIGIT_WORDS: u32 = 4_000_000_000;

/// The nine ASCII digits a 32-bit word gives (least significant first), or `None` when the
/// word is rejected. Rejection sampling: a word below 4 * 10^9 is uniform modulo 10^9, so
/// its nine low decimal digits are nine independent uniform digits. One word in 14 is
/// rejected; no modulo bias.
fn nine_digits(word: u32) -> Option<[u8; 9]> {
    if word >= DIGIT_WORDS {
        return None;
    }
    let mut x = word % 1_000_000_000;
    let mut out = [0u8; 9];
    for d in &mut out {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
    Some(out)
}

/// One generation of a device's security strings. Secret: `Debug` shows only the
/// generation.
#[derive(Clone, PartialEq, Eq)]
pub struct SecurityStrings {
    generation: u32,
    digits: Box<[[u8; STRING_DIGITS]; STRINGS_PER_SET]>,
}

impl SecurityStrings {
    /// A set from 100 strings of 10 digits each (for clients that received them).
    pub fn from_strings(generation: u32, strings: &[&str]) -> Result<Self> {
        let bad = Error::InvalidInput {
            field: "security strings",
            reason: "must be 100 strings of 10 digits",
        };
        if strings.len() != STRINGS_PER_SET {
            return Err(bad);
        }
        let mut digits = Box::new([[0u8; STRING_DIGITS]; STRINGS_PER_SET]);
        for (slot, s) in digits.iter_mut().zip(strings) {
            let b = s.as_bytes();
            if b.len() != STRING_DIGITS || !b.iter().all(u8::is_ascii_digit) {
                return Err(bad);
            }
            slot.copy_from_slice(b);
        }
        Ok(Self { generation, digits })
    }

    /// The generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The string at `index` (0–99). Handle with care.
    pub fn get(&self, index: u8) -> Option<&str> {
        self.digits
            .get(index as usize)
            .map(|d| std::str::from_utf8(d).expect("ASCII digits"))
    }

    /// The 100 strings joined by `;`, as AgentXML sends them. Handle with care.
    pub fn to_wire(&self) -> String {
        let mut out = String::with_capacity(STRINGS_PER_SET * (STRING_DIGITS + 1));
        for (i, d) in self.digits.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(std::str::from_utf8(d).expect("ASCII digits"));
        }
        out
    }

    /// Parses the `;`-joined wire form.
    pub fn from_wire(generation: u32, wire: &str) -> Result<Self> {
        let parts: Vec<&str> = wire.trim().split(';').map(str::trim).collect();
        Self::from_strings(generation, &parts)
    }
}

impl fmt::Debug for SecurityStrings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecurityStrings(generation {}, [REDACTED])",
            self.generation
        )
    }
}

/// The one-time code for a string and a PIN: the string's digits at the PIN's positions
/// (1–9, 0 meaning position 10), then the two-digit index.
///
/// ```
/// use swivel_provision::{Pin, one_time_code};
/// let pin = Pin::parse("9132").unwrap();
/// assert_eq!(one_time_code("0123456789", &pin, 6).unwrap(), "802106");
/// ```
pub fn one_time_code(string: &str, pin: &Pin, index: u8) -> Result<String> {
    let s = string.as_bytes();
    if s.len() != STRING_DIGITS || !s.iter().all(u8::is_ascii_digit) {
        return Err(Error::InvalidInput {
            field: "security string",
            reason: "must be 10 digits",
        });
    }
    if index as usize >= STRINGS_PER_SET {
        return Err(Error::InvalidInput {
            field: "string index",
            reason: "must be 0 to 99",
        });
    }
    let mut out = String::with_capacity(pin.expose().len() + 2);
    for p in pin.expose().bytes() {
        let position = if p == b'0' { 10 } else { (p - b'0') as usize };
        out.push(s[position - 1] as char);
    }
    out.push_str(&format!("{index:02}"));
    Ok(out)
}

/// Splits a one-time code for a PIN of `pin_len` digits into (code digits, index). `None`
/// when it is not `pin_len + 2` digits or the index is 00.
pub(crate) fn split_otc(otc: &str, pin_len: usize) -> Option<(&str, u8)> {
    let otc = otc.trim();
    if otc.len() != pin_len + 2 || !otc.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (digits, idx) = otc.split_at(pin_len);
    let index: u8 = idx.parse().ok()?;
    (index != 0).then_some((digits, index))
}

/// Constant-time comparison of two one-time codes.
pub(crate) fn otc_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example() {
        let pin = Pin::parse("9132").unwrap();
        assert_eq!(one_time_code("0123456789", &pin, 6).unwrap(), "802106");
        // 0 in a PIN means position 10.
        let pin = Pin::parse("0000").unwrap();
        assert_eq!(one_time_code("0123456789", &pin, 42).unwrap(), "999942");
        assert!(one_time_code("012345678", &pin, 1).is_err());
        assert!(one_time_code("0123456789", &pin, 100).is_err());
    }

    #[test]
    fn generation_is_deterministic_and_seeded() {
        let g = ChaChaStringGenerator;
        let a = g.generate([1; 32], 1);
        let b = g.generate([1; 32], 1);
        let c = g.generate([2; 32], 1);
        assert_eq!(a, b);
        assert_ne!(a.to_wire(), c.to_wire());
        let wire = a.to_wire();
        assert_eq!(wire.split(';').count(), 100);
        assert!(
            wire.split(';')
                .all(|s| s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_eq!(SecurityStrings::from_wire(1, &wire).unwrap(), a);
        assert!(!format!("{a:?}").contains(a.get(1).unwrap()));
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let set = ChaChaStringGenerator.generate([9; 32], 1);
        let mut counts = [0u32; 10];
        for b in set.to_wire().bytes().filter(u8::is_ascii_digit) {
            counts[(b - b'0') as usize] += 1;
        }
        // 1000 digits: each should be near 100; 50..150 fails only on a broken generator.
        assert!(counts.iter().all(|c| (50..150).contains(c)), "{counts:?}");
    }

    #[test]
    fn split() {
        assert_eq!(split_otc("802106", 4), Some(("8021", 6)));
        assert_eq!(split_otc("802100", 4), None);
        assert_eq!(split_otc("80210", 4), None);
        assert_eq!(split_otc("8021a6", 4), None);
    }
}

#[cfg(test)]
mod boundary_tests {
    use super::*;

    #[test]
    fn a_word_gives_its_nine_low_digits_below_four_billion_only() {
        let ascii = |d: Option<[u8; 9]>| d.map(|d| String::from_utf8(d.to_vec()).unwrap());
        assert_eq!(ascii(nine_digits(0)), Some("000000000".into()));
        assert_eq!(ascii(nine_digits(123_456_789)), Some("987654321".into()));
        assert_eq!(ascii(nine_digits(1_000_000_007)), Some("700000000".into()));
        assert_eq!(
            ascii(nine_digits(DIGIT_WORDS - 1)),
            Some("999999999".into())
        );
        assert_eq!(nine_digits(DIGIT_WORDS), None);
        assert_eq!(nine_digits(DIGIT_WORDS + 1), None);
        assert_eq!(nine_digits(u32::MAX), None);
    }

    #[test]
    fn split_otc_takes_exactly_pin_length_plus_two_digits() {
        // The right shape, at the index's bounds.
        assert_eq!(split_otc("802101", 4), Some(("8021", 1)));
        assert_eq!(split_otc("802199", 4), Some(("8021", 99)));
        assert_eq!(split_otc(" 802106 ", 4), Some(("8021", 6)));
        assert_eq!(split_otc("1234567806", 8), Some(("12345678", 6)));
        // Index 00 is never issued.
        assert_eq!(split_otc("802100", 4), None);
        // A non-digit anywhere, with the right length.
        for bad in [
            "a02106", "8a2106", "802a06", "8021a6", "80210a", "8021+6", "-80216",
        ] {
            assert_eq!(split_otc(bad, 4), None, "{bad}");
        }
        // Too short (even shorter than the PIN) or too long, all digits.
        for bad in ["", "8", "802", "8021", "80210", "8021061", "80210612"] {
            assert_eq!(split_otc(bad, 4), None, "{bad}");
        }
        // Multi-byte characters never reach `split_at` inside a character.
        assert_eq!(split_otc("80é06", 4), None);
        assert_eq!(split_otc("802é1", 4), None);
    }

    #[test]
    fn a_one_time_code_needs_a_string_of_ten_digits() {
        let pin = Pin::parse("1234").unwrap();
        assert_eq!(one_time_code("5678901234", &pin, 1).unwrap(), "567801");
        for bad in [
            "567890123a",
            "a678901234",
            "56789 1234",
            "567890123",
            "56789012345",
        ] {
            assert!(one_time_code(bad, &pin, 1).is_err(), "{bad:?}");
        }
        assert!(one_time_code("5678901234", &pin, 99).is_ok());
        assert!(one_time_code("5678901234", &pin, 100).is_err());
    }

    #[test]
    fn a_set_debugs_as_its_generation_only() {
        let set = ChaChaStringGenerator.generate([3; 32], 12);
        assert_eq!(
            format!("{set:?}"),
            "SecurityStrings(generation 12, [REDACTED])"
        );
    }

    #[test]
    fn otc_eq_needs_the_same_length_and_every_byte() {
        assert!(otc_eq("802106", "802106"));
        assert!(!otc_eq("802106", "802107"));
        assert!(!otc_eq("802106", "902106"));
        assert!(!otc_eq("802106", "8021066"));
        assert!(!otc_eq("80210", "802106"));
        assert!(otc_eq("", ""));
    }

    #[test]
    fn strings_are_taken_only_as_100_strings_of_10_digits() {
        let good: Vec<String> = (0..100).map(|i| format!("{:010}", i * 7)).collect();
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let set = SecurityStrings::from_strings(3, &refs(&good)).unwrap();
        assert_eq!(set.generation(), 3);
        assert_eq!(set.get(0), Some("0000000000"));
        assert_eq!(set.get(99), Some("0000000693"));
        assert_eq!(set.get(100), None);
        assert_eq!(SecurityStrings::from_wire(3, &set.to_wire()).unwrap(), set);
        assert!(SecurityStrings::from_strings(3, &refs(&good[..99])).is_err());
        for bad in ["000000000", "00000000000", "00000a0000", "0000 00000", ""] {
            let mut v = good.clone();
            v[42] = bad.into();
            assert!(
                SecurityStrings::from_strings(3, &refs(&v)).is_err(),
                "{bad:?}"
            );
        }
    }
}
