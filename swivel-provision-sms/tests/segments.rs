//! Segment counting through the public API.

use swivel_provision_sms::{SmsEncoding, is_gsm7, segments};

#[test]
fn non_gsm_character_needs_ucs2_and_shrinks_the_segment() {
    // 100 GSM characters fit one GSM-7 segment...
    let gsm = "a".repeat(100);
    let s = segments(&gsm);
    assert_eq!((s.encoding, s.count, s.units), (SmsEncoding::Gsm7, 1, 100));
    // ...one 'ł' turns the whole text into UCS-2: 101 units, parts of 67.
    let s = segments(&format!("{gsm}ł"));
    assert_eq!((s.encoding, s.count, s.units), (SmsEncoding::Ucs2, 2, 101));
    // An emoji is a surrogate pair: two UCS-2 units.
    let s = segments("Code 1234 🙂");
    assert_eq!((s.encoding, s.count, s.units), (SmsEncoding::Ucs2, 1, 12));
    assert!(!is_gsm7("ł"));
}

#[test]
fn gsm_extension_characters_count_double() {
    let s = segments("{}");
    assert_eq!((s.encoding, s.units), (SmsEncoding::Gsm7, 4));
    // 159 plain + one '€' = 161 septets: two parts, although only 160 characters.
    let text = format!("{}€", "a".repeat(159));
    assert_eq!(text.chars().count(), 160);
    let s = segments(&text);
    assert_eq!((s.encoding, s.count, s.units), (SmsEncoding::Gsm7, 2, 161));
    // Accented letters of the GSM basic table stay GSM-7 and count once.
    let s = segments("é à ü Ñ ß Δ £");
    assert_eq!((s.encoding, s.units), (SmsEncoding::Gsm7, 13));
}
