//! WeChat's request signatures: SHA-1 over the byte-wise sorted, concatenated parts.
//!
//! The URL / push signature is `sign(token, [timestamp, nonce])`; the safe-mode
//! `msg_signature` is `sign(token, [timestamp, nonce, encrypt])`. The token is one of the
//! sorted parts, which is why it is passed separately: callers cannot forget it.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Lowercase hex SHA-1 of `token` and `parts`, sorted byte-wise and joined without separator.
pub fn sign(token: &str, parts: &[&str]) -> String {
    let mut all: Vec<&str> = Vec::with_capacity(parts.len() + 1);
    all.push(token);
    all.extend_from_slice(parts);
    // `str`'s Ord is byte-wise, exactly what WeChat's samples (Go sort.Strings, Java
    // Arrays.sort on ASCII) do.
    all.sort_unstable();
    let mut hasher = Sha1::new();
    for part in &all {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether `expected_hex` (as received; case-insensitive) is the signature of `parts`.
///
/// Constant time in the content of the signature, so a caller probing byte by byte learns
/// nothing from timing; a length mismatch is answered at once (the length is public).
pub fn verify(expected_hex: &str, token: &str, parts: &[&str]) -> bool {
    let computed = sign(token, parts);
    let received = expected_hex.to_ascii_lowercase();
    if received.len() != computed.len() {
        return false;
    }
    received.as_bytes().ct_eq(computed.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vector_p1_url_verification_signature() {
        let sig = sign("AAAAA", &["1714036504", "1514711492"]);
        assert_eq!(sig, "f464b24fc39322e44b38aa78f5edd27bd1441696");
        assert!(verify(&sig, "AAAAA", &["1714036504", "1514711492"]));
    }

    #[test]
    fn vector_p2_push_signature() {
        assert_eq!(
            sign("AAAAA", &["1714037059", "486452656"]),
            "899cf89e464efb63f54ddac96b0a0a235f53aa78"
        );
    }

    #[test]
    fn vector_p3_valid_accepted_and_one_digit_off_rejected() {
        let parts = ["1410685589", "test"];
        assert!(verify(
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff",
            "test",
            &parts
        ));
        assert!(!verify(
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe",
            "test",
            &parts
        ));
    }

    #[test]
    fn vector_c_msg_signature_covers_the_ciphertext() {
        let encrypt = crate::crypt::tests::VECTOR_C_ENCRYPT;
        let parts = ["1409735669", "1320562132", encrypt];
        assert_eq!(
            sign("spamtest", &parts),
            "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
        );
        assert!(verify(
            "5D197AAFFBA7E9B25A30732F161A50DEE96BD5FA",
            "spamtest",
            &parts
        ));
    }

    #[test]
    fn empty_wrong_length_and_garbage_signatures_are_rejected() {
        for bad in [
            "",
            "f464",
            "zz",
            "f464b24fc39322e44b38aa78f5edd27bd14416960",
        ] {
            assert!(
                !verify(bad, "AAAAA", &["1714036504", "1514711492"]),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn order_of_parts_does_not_matter(token in ".{0,20}", a in ".{0,20}", b in ".{0,20}") {
            prop_assert_eq!(sign(&token, &[&a, &b]), sign(&token, &[&b, &a]));
            let sig = sign(&token, &[&a, &b]);
            prop_assert!(verify(&sig, &token, &[&b, &a]));
        }
    }
}
