//! SMS segment counting (GSM 03.38 default alphabet vs UCS-2) and GSM-7 encoding.

/// The GSM 03.38 default alphabet, in code order (0x00..=0x7F). Position 0x1B is the escape
/// to the extension table and is not a character of its own.
const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The GSM 03.38 extension table: each is sent as the escape 0x1B then its code, so it
/// counts as two septets.
const GSM7_EXTENSION: [(char, u8); 10] = [
    ('\u{0C}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

const GSM7_ESCAPE: u8 = 0x1B;

/// Septets in a single GSM-7 message.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 message (7 septets go to the UDH).
pub const GSM7_MULTI: usize = 153;
/// UTF-16 code units in a single UCS-2 message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 message.
pub const UCS2_MULTI: usize = 67;

/// How an SMS text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsEncoding {
    /// The GSM 03.38 default alphabet (7-bit); SMPP `data_coding` 0.
    Gsm7,
    /// UCS-2 / UTF-16 (16-bit); SMPP `data_coding` 8. Used as soon as one character is
    /// outside the GSM 03.38 alphabet and its extension table.
    Ucs2,
}

/// How many SMS parts a text takes, and in which encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segments {
    /// The encoding the text needs.
    pub encoding: SmsEncoding,
    /// Number of SMS parts (1 for a text that fits one message, including the empty text).
    pub count: usize,
    /// Length in the encoding's units: septets for GSM-7 (extension characters count 2),
    /// UTF-16 code units for UCS-2 (characters outside the BMP count 2).
    pub units: usize,
}

fn gsm7_code(c: char) -> Option<Gsm7Char> {
    if c == '\u{1B}' {
        return None;
    }
    if let Some(pos) = GSM7_BASIC.iter().position(|&g| g == c) {
        // The table has 128 entries, so the index fits a byte.
        return Some(Gsm7Char::Basic(pos as u8));
    }
    GSM7_EXTENSION
        .iter()
        .find(|(g, _)| *g == c)
        .map(|&(_, code)| Gsm7Char::Extension(code))
}

#[derive(Clone, Copy)]
enum Gsm7Char {
    Basic(u8),
    Extension(u8),
}

impl Gsm7Char {
    fn septets(self) -> usize {
        match self {
            Gsm7Char::Basic(_) => 1,
            Gsm7Char::Extension(_) => 2,
        }
    }
}

/// Whether every character of `text` is in the GSM 03.38 alphabet or its extension table.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_code(c).is_some())
}

/// Counts the SMS parts `text` takes.
///
/// GSM-7 when every character is in the GSM 03.38 default alphabet or its extension table
/// (extension characters such as `{`, `}`, `[`, `]`, `~`, `\`, `|`, `^` and `€` take two
/// septets): one part up to 160 septets, else parts of 153 septets. Otherwise UCS-2: one
/// part up to 70 UTF-16 code units, else parts of 67. A part never splits an escape pair
/// or a surrogate pair, as handsets and SMSCs split them.
///
/// ```
/// use swivel_provision_sms::{segments, SmsEncoding};
/// let s = segments("Provision code: 1234 5678");
/// assert_eq!((s.encoding, s.count), (SmsEncoding::Gsm7, 1));
/// assert_eq!(segments("Kod: łódź").encoding, SmsEncoding::Ucs2);
/// ```
pub fn segments(text: &str) -> Segments {
    let gsm: Option<Vec<usize>> = text
        .chars()
        .map(|c| gsm7_code(c).map(Gsm7Char::septets))
        .collect();
    match gsm {
        Some(widths) => count_parts(SmsEncoding::Gsm7, &widths, GSM7_SINGLE, GSM7_MULTI),
        None => {
            let widths: Vec<usize> = text.chars().map(char::len_utf16).collect();
            count_parts(SmsEncoding::Ucs2, &widths, UCS2_SINGLE, UCS2_MULTI)
        }
    }
}

fn count_parts(encoding: SmsEncoding, widths: &[usize], single: usize, multi: usize) -> Segments {
    let units: usize = widths.iter().sum();
    if units <= single {
        return Segments {
            encoding,
            count: 1,
            units,
        };
    }
    let mut count = 1;
    let mut used = 0;
    for &w in widths {
        if used + w > multi {
            count += 1;
            used = 0;
        }
        used += w;
    }
    Segments {
        encoding,
        count,
        units,
    }
}

/// Encodes `text` as unpacked GSM-7 septets (one octet each, extension characters as
/// 0x1B and their code), as SMPP sends `data_coding` 0. `None` if a character is outside
/// the alphabet.
pub(crate) fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match gsm7_code(c)? {
            Gsm7Char::Basic(b) => out.push(b),
            Gsm7Char::Extension(b) => {
                out.push(GSM7_ESCAPE);
                out.push(b);
            }
        }
    }
    Some(out)
}

/// Encodes `text` as UCS-2 big-endian (UTF-16BE, as SMSCs accept for `data_coding` 8).
pub(crate) fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_is_one_gsm7_segment() {
        let s = segments("Provision code: 12345678 Valid 10 min.");
        assert_eq!(s.encoding, SmsEncoding::Gsm7);
        assert_eq!(s.count, 1);
        assert_eq!(s.units, 38);
    }

    #[test]
    fn empty_text_is_one_segment() {
        assert_eq!(segments("").count, 1);
        assert_eq!(segments("").units, 0);
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
    }

    #[test]
    fn extension_characters_count_two_septets() {
        let s = segments("{}[]~\\|^€");
        assert_eq!(s.encoding, SmsEncoding::Gsm7);
        assert_eq!(s.units, 18);
        // 80 euro signs = 160 septets: one part; one more character overflows.
        assert_eq!(segments(&"€".repeat(80)).count, 1);
        assert_eq!(segments(&format!("{}a", "€".repeat(80))).count, 2);
    }

    #[test]
    fn escape_pair_is_not_split_across_parts() {
        // 152 septets then an extension character: it does not fit the 153-septet part,
        // so it moves to the next one.
        let text = format!("{}{}{}", "a".repeat(152), "{", "a".repeat(10));
        let s = segments(&text);
        assert_eq!(s.units, 164);
        assert_eq!(s.count, 2);
        let text = format!("{}{}", "a".repeat(152), "{".repeat(77));
        // part 1: 152 a's; parts of 76 pairs (152 septets) → 77 pairs take 2 more parts.
        assert_eq!(segments(&text).count, 3);
    }

    #[test]
    fn non_gsm_character_switches_to_ucs2() {
        let s = segments("Kod: ł");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!(s.units, 6);
        assert_eq!(s.count, 1);
        assert_eq!(segments(&format!("{}ł", "a".repeat(69))).count, 1);
        assert_eq!(segments(&format!("{}ł", "a".repeat(70))).count, 2);
        assert_eq!(segments(&format!("{}ł", "a".repeat(134))).count, 3);
    }

    #[test]
    fn emoji_takes_two_ucs2_units() {
        let s = segments("🙂");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!(s.units, 2);
        assert_eq!(segments(&"🙂".repeat(35)).count, 1);
        assert_eq!(segments(&"🙂".repeat(36)).count, 2);
    }

    #[test]
    fn escape_character_itself_is_not_gsm7() {
        assert!(!is_gsm7("\u{1B}"));
        assert!(is_gsm7("@£$_Δ"));
    }

    #[test]
    fn gsm7_encoding_uses_03_38_codes() {
        assert_eq!(encode_gsm7("@$_A").unwrap(), vec![0x00, 0x02, 0x11, 0x41]);
        assert_eq!(encode_gsm7("{€").unwrap(), vec![0x1B, 0x28, 0x1B, 0x65]);
        assert!(encode_gsm7("ł").is_none());
    }

    #[test]
    fn ucs2_is_big_endian_utf16() {
        assert_eq!(encode_ucs2("ł"), vec![0x01, 0x42]);
        assert_eq!(encode_ucs2("🙂"), vec![0xD8, 0x3D, 0xDE, 0x42]);
    }
}
