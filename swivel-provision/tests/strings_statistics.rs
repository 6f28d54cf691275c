//! The security string generator's digits are uniform and independent: chi-square tests
//! over many sets from fixed seeds (so the run is repeatable), with limits a correct
//! generator passes by a wide margin and a generator that repeats or favours digits fails
//! by orders of magnitude. The same statistics are shown to reject two broken generators.

use swivel_provision::{
    ChaChaStringGenerator, SecurityStrings, StringGenerator, strings::STRING_DIGITS,
    strings::STRINGS_PER_SET,
};

/// Sets drawn for each statistic: 200 sets of 100 strings, 200,000 digits.
const SETS: u32 = 200;

/// Chi-square limits, each with a p-value near 10^-6 for a uniform source (9 degrees of
/// freedom for digits, 99 for pairs of digits). The correct generator's values for these
/// seeds are printed by the tests; they sit near the degrees of freedom.
const DIGIT_LIMIT: f64 = 40.0;
const PAIR_LIMIT: f64 = 180.0;

/// The fixed seed of set `i`.
fn seed(i: u32) -> [u8; 32] {
    let mut s = [0xA5u8; 32];
    s[..4].copy_from_slice(&i.to_le_bytes());
    s
}

/// Every string of the `SETS` sets `generator` makes, as digit values 0–9.
fn strings_of(generator: &dyn StringGenerator) -> Vec<[u8; STRING_DIGITS]> {
    let mut out = Vec::with_capacity(SETS as usize * STRINGS_PER_SET);
    for i in 0..SETS {
        let set = generator.generate(seed(i), 1);
        for index in 0..STRINGS_PER_SET as u8 {
            let s = set.get(index).expect("100 strings");
            let mut digits = [0u8; STRING_DIGITS];
            for (d, b) in digits.iter_mut().zip(s.bytes()) {
                assert!(b.is_ascii_digit(), "a string holds digits only");
                *d = b - b'0';
            }
            out.push(digits);
        }
    }
    out
}

/// Pearson's chi-square of `counts` against equal expected counts.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| {
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum()
}

/// The three statistics of a generator.
#[derive(Debug)]
struct Stats {
    /// Chi-square of the ten digits' counts over all strings.
    digits: f64,
    /// Chi-square of the hundred ordered pairs of adjacent digits within strings.
    pairs: f64,
    /// The largest chi-square of the digits' counts at one position of a string (0–9).
    worst_position: f64,
}

fn stats(generator: &dyn StringGenerator) -> Stats {
    let strings = strings_of(generator);
    let mut digits = [0u64; 10];
    let mut pairs = [0u64; 100];
    let mut positions = [[0u64; 10]; STRING_DIGITS];
    for s in &strings {
        for (pos, &d) in s.iter().enumerate() {
            digits[d as usize] += 1;
            positions[pos][d as usize] += 1;
        }
        for w in s.windows(2) {
            pairs[(w[0] * 10 + w[1]) as usize] += 1;
        }
    }
    Stats {
        digits: chi_square(&digits),
        pairs: chi_square(&pairs),
        worst_position: positions.iter().map(|p| chi_square(p)).fold(0.0, f64::max),
    }
}

fn passes(s: &Stats) -> bool {
    s.digits < DIGIT_LIMIT && s.pairs < PAIR_LIMIT && s.worst_position < DIGIT_LIMIT
}

#[test]
fn digits_pairs_and_positions_are_uniform() {
    let s = stats(&ChaChaStringGenerator);
    println!("ChaChaStringGenerator over {SETS} sets: {s:?}");
    assert!(s.digits < DIGIT_LIMIT, "digit counts are biased: {s:?}");
    assert!(s.pairs < PAIR_LIMIT, "adjacent digits depend: {s:?}");
    assert!(
        s.worst_position < DIGIT_LIMIT,
        "a position is biased: {s:?}"
    );
}

#[test]
fn no_set_repeats_a_string() {
    // Two equal strings among 100 random ones of 10^10 happen once in about 2 million
    // sets; a generator with little entropy per string repeats them at once.
    for i in 0..SETS {
        let set = ChaChaStringGenerator.generate(seed(i), 1);
        let mut all: Vec<&str> = (0..STRINGS_PER_SET as u8)
            .map(|n| set.get(n).unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), STRINGS_PER_SET, "set {i} repeats a string");
    }
}

/// A generator that rewrites each string of the real one.
struct Rewritten(fn(&str) -> String);

impl StringGenerator for Rewritten {
    fn generate(&self, seed: [u8; 32], generation: u32) -> SecurityStrings {
        let real = ChaChaStringGenerator.generate(seed, generation);
        let strings: Vec<String> = (0..STRINGS_PER_SET as u8)
            .map(|i| (self.0)(real.get(i).unwrap()))
            .collect();
        let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
        SecurityStrings::from_strings(generation, &refs).unwrap()
    }
}

#[test]
fn the_statistics_reject_repeated_digits() {
    // Each half of a string is one digit repeated (as a generator that divides its word
    // once and then only takes remainders would make).
    let repeated = Rewritten(|s| {
        let b = s.as_bytes();
        let half = |d: u8| (d as char).to_string().repeat(STRING_DIGITS / 2);
        half(b[0]) + &half(b[5])
    });
    let s = stats(&repeated);
    assert!(!passes(&s), "{s:?}");
    assert!(s.pairs > 100.0 * PAIR_LIMIT, "{s:?}");
}

#[test]
fn the_statistics_reject_a_mild_bias() {
    // A 9 at the first position turns into a 0 half the time (by the parity of the next
    // digit): a 5 % shift on one position in ten.
    let biased = Rewritten(|s| {
        let b = s.as_bytes();
        if b[0] == b'9' && b[1] % 2 == 0 {
            format!("0{}", &s[1..])
        } else {
            s.to_owned()
        }
    });
    let s = stats(&biased);
    assert!(!passes(&s), "{s:?}");
}
