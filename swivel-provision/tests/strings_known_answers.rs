//! Known answers of the security string generator: a fixed seed gives fixed strings. Devices
//! derive their strings again from the seed, so a change here strands every provisioned
//! device; and a generator that loses entropy (repeats digits, favours some) shows at once.

use swivel_provision::{ChaChaStringGenerator, SecurityStrings, StringGenerator};

fn set(seed: [u8; 32], generation: u32) -> SecurityStrings {
    ChaChaStringGenerator.generate(seed, generation)
}

#[test]
fn the_first_string_of_the_zero_seed_follows_from_the_chacha20_test_vector() {
    // ChaCha20's keystream for the zero key starts 76 b8 e0 ad a0 f1 3d 90 (RFC 7539, A.1,
    // test vector 1): the little-endian words 2917185654 and 2419978656, both below
    // 4 * 10^9. The first gives the digits of 917185654 from the least significant,
    // "456581719"; the second's least significant digit, 6, ends the string.
    assert_eq!(set([0; 32], 1).get(0), Some("4565817196"));
}

#[test]
fn a_fixed_seed_gives_fixed_strings() {
    let zero = set([0; 32], 1);
    let expected = [
        (0, "4565817196"),
        (1, "5687991425"),
        (2, "1359848133"),
        (11, "5913084789"),
        (50, "5423409162"),
        (98, "3313522222"),
        (99, "5443629439"),
    ];
    for (index, string) in expected {
        assert_eq!(zero.get(index), Some(string), "string {index} of seed 0");
    }
    let other = set([0x42; 32], 7);
    let expected = [
        (0, "4865706353"),
        (1, "0301837772"),
        (2, "9286553636"),
        (11, "3533679811"),
        (50, "0253416513"),
        (98, "6676774048"),
        (99, "7233854066"),
    ];
    for (index, string) in expected {
        assert_eq!(
            other.get(index),
            Some(string),
            "string {index} of seed 0x42"
        );
    }
    assert_eq!(other.generation(), 7);
}

#[test]
fn the_generation_tags_the_set_but_the_seed_alone_makes_the_strings() {
    let a = set([0x42; 32], 1);
    let b = set([0x42; 32], 7);
    assert_eq!(a.to_wire(), b.to_wire());
    assert_ne!(a, b, "sets of different generations differ");
    assert_eq!(a.generation(), 1);
}
