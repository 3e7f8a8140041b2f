//! Receipt codes (回执码): how an anonymous reporter follows a report up.
//! 20 symbols of Crockford's base32 alphabet carry 100 random bits; only a
//! SHA-256 of the normalised code is stored. Also the keyed hash that names
//! a client in the record of wrong guesses.

use std::fmt;

use hmac::{Hmac, Mac as _};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

/// Crockford base32: no I, L, O or U, so codes read aloud or retyped survive.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LENGTH: usize = 20;

/// A fresh code, grouped in fours for reading: `7K3Q-M9XD-...`.
pub fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let symbols: Vec<char> = (0..LENGTH)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    symbols
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The stored form of a code as a reporter may type it: case, dashes and
/// spaces don't matter; Crockford's look-alikes (I/L → 1, O → 0) are mapped.
pub fn hash(code: &str) -> Option<[u8; 32]> {
    let normalised: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            other => other,
        })
        .collect();
    if normalised.len() != LENGTH || !normalised.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    Some(Sha256::digest(normalised.as_bytes()).into())
}

/// Names the client of a failed receipt look-up by an HMAC-SHA256 of its
/// key (the gateway's per-user key), so the record of wrong guesses cannot
/// be joined to anything by whoever reads the database without this key.
#[derive(Clone)]
pub struct ClientKeyer {
    key: [u8; 32],
}

impl ClientKeyer {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A key of this process alone, for when none is configured.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Self { key }
    }

    pub fn client_hash(&self, client_key: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key)
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(client_key.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for ClientKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKeyer(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_hashes_the_same_however_it_is_typed() {
        let code = new_code();
        let sloppy = code.to_lowercase().replace('-', " ");
        assert_eq!(hash(&code), hash(&sloppy));
        assert!(hash(&code).is_some());
    }

    #[test]
    fn codes_differ_and_have_100_bits() {
        assert_ne!(new_code(), new_code());
        assert_eq!(new_code().replace('-', "").len() * 5, 100);
    }

    #[test]
    fn a_client_hash_depends_on_the_key() {
        let one = ClientKeyer::new([1; 32]);
        assert_eq!(one.client_hash("c"), one.client_hash("c"));
        assert_ne!(
            one.client_hash("c"),
            ClientKeyer::new([2; 32]).client_hash("c")
        );
        assert_ne!(one.client_hash("c"), one.client_hash("d"));
    }

    #[test]
    fn malformed_codes_have_no_hash() {
        assert_eq!(hash("1234"), None);
        assert_eq!(hash("UUUU-UUUU-UUUU-UUUU-UUUU"), None);
    }
}
