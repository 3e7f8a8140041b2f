//! identity's keys for personal data: the HMAC that turns an ID number into the person key
//! every service uses, and the AES-GCM seal of ID numbers at rest. Only identity holds them.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use huimin_kit::{
    config::{ConfigError, Env},
    pii::{IdNumber, PersonKey},
};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Keys protecting personal data; share it behind an `Arc`.
pub struct PiiKeys {
    pub keyer: PersonKeyer,
    pub sealer: Sealer,
}

impl fmt::Debug for PiiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PiiKeys(..)")
    }
}

impl PiiKeys {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            keyer: PersonKeyer::new(env.key32("HUIMIN_PII_HMAC_KEY")?),
            sealer: Sealer::new(env.key32("HUIMIN_PII_ENCRYPTION_KEY")?),
        })
    }
}

/// Holds the HMAC key that turns ID numbers (and other identifiers) into lookup keys.
pub struct PersonKeyer {
    key: SecretBox<[u8; 32]>,
}

impl PersonKeyer {
    pub fn new(key: [u8; 32]) -> PersonKeyer {
        PersonKeyer {
            key: SecretBox::new(Box::new(key)),
        }
    }

    /// The person key of `id`: HMAC-SHA256 over the 18 normalised characters.
    ///
    /// The plain HMAC of the number (no domain prefix) keeps the key reproducible by other
    /// tools, e.g. pgcrypto's `hmac(number, key, 'sha256')`. It cannot collide with
    /// [`PersonKeyer::hash`], whose input starts with a zero byte while a number starts with
    /// a digit.
    pub fn key_of(&self, id: &IdNumber) -> PersonKey {
        let mut mac = self.mac();
        mac.update(id.expose().as_bytes());
        PersonKey::from_bytes(mac.finalize().into_bytes().into())
    }

    /// A keyed, domain-separated hash for other lookups that must not hold the clear value
    /// (receipt codes, openids). `domain` names the use, e.g. `"whistle.receipt"`, so equal
    /// values in different domains give unrelated hashes.
    pub fn hash(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        // Length-prefixing the domain makes (domain, value) splits unambiguous.
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(self.key.expose_secret())
            .expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for PersonKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonKeyer { key: [REDACTED] }")
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is shorter than a nonce and tag")]
    TooShort,
    #[error("sealed value failed authentication: wrong key or altered data")]
    Tampered,
    #[error("sealed value is not a valid ID number")]
    NotAnIdNumber,
}

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Encrypts personal data at rest with AES-256-GCM. A sealed value is
/// `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
///
/// Nonces are random: with 96 bits, one key can seal billions of values before a repeat is a
/// concern, far beyond a county's population, and no counter has to be shared between replicas.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    pub fn new(mut key: [u8; 32]) -> Sealer {
        let cipher = Aes256Gcm::new(&key.into());
        key.zeroize();
        Sealer { cipher }
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        self.seal_bound(plaintext, b"")
    }

    /// Seals `plaintext` bound to `aad`: it opens only with the same `aad`.
    pub fn seal_bound(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encrypts anything shorter than 64 GiB");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.open_bound(sealed, b"")
    }

    /// Opens a value sealed with [`Sealer::seal_bound`] to the same `aad`.
    pub fn open_bound(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::TooShort);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| SealError::Tampered)
    }

    /// Seals a person's ID number bound to their person key, so the
    /// ciphertext opens only in that person's row: swapped between rows by
    /// someone with write access to the database, it does not open.
    pub fn seal_id(&self, id: &IdNumber, person: &PersonKey) -> Vec<u8> {
        self.seal_bound(id.expose().as_bytes(), person.as_bytes())
    }

    /// Opens a stored ID number: bound to `person` ([`IdSeal::Bound`]), or
    /// sealed before binding existed ([`IdSeal::Legacy`], until
    /// `huimin keys reseal` has run).
    pub fn open_id(
        &self,
        sealed: &[u8],
        person: &PersonKey,
        seal: IdSeal,
    ) -> Result<IdNumber, SealError> {
        let aad: &[u8] = match seal {
            IdSeal::Legacy => b"",
            IdSeal::Bound => person.as_bytes(),
        };
        let mut clear = self.open_bound(sealed, aad)?;
        let parsed = std::str::from_utf8(&clear)
            .ok()
            .and_then(|s| IdNumber::parse(s).ok())
            .ok_or(SealError::NotAnIdNumber);
        clear.zeroize();
        parsed
    }
}

/// How a stored ID number was sealed (`persons.id_seal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSeal {
    /// 1: no associated data (before migration 0021).
    Legacy,
    /// 2: the person key as associated data.
    Bound,
}

impl IdSeal {
    pub fn from_column(value: i16) -> Option<Self> {
        match value {
            1 => Some(Self::Legacy),
            2 => Some(Self::Bound),
            _ => None,
        }
    }

    pub fn column(self) -> i16 {
        match self {
            Self::Legacy => 1,
            Self::Bound => 2,
        }
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer { key: [REDACTED] }")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn person_key_is_deterministic_and_depends_on_the_key() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let a = PersonKeyer::new([7; 32]);
        let b = PersonKeyer::new([8; 32]);
        assert_eq!(a.key_of(&id), a.key_of(&id));
        assert_ne!(a.key_of(&id), b.key_of(&id));
        // Lowercase input keys the same person.
        let lower = IdNumber::parse("11010519491231002x").unwrap();
        assert_eq!(a.key_of(&id), a.key_of(&lower));
    }

    #[test]
    fn person_key_is_plain_hmac_sha256_of_the_number() {
        // RFC 4231 test case 2 checks our HMAC wiring against a published vector.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let keyer = PersonKeyer::new([0x0b; 32]);
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"11010519491231002X");
        assert_eq!(
            keyer.key_of(&id).as_bytes()[..],
            mac.finalize().into_bytes()[..]
        );
    }

    #[test]
    fn domain_hashes_are_separated() {
        let keyer = PersonKeyer::new([1; 32]);
        assert_eq!(keyer.hash("receipt", b"abc"), keyer.hash("receipt", b"abc"));
        assert_ne!(keyer.hash("receipt", b"abc"), keyer.hash("openid", b"abc"));
        assert_ne!(keyer.hash("ab", b"c"), keyer.hash("a", b"bc"));
        assert_ne!(
            PersonKeyer::new([2; 32]).hash("receipt", b"abc"),
            keyer.hash("receipt", b"abc")
        );
    }

    #[test]
    fn key_holders_do_not_print_their_keys() {
        let keyer = format!("{:?}", PersonKeyer::new([0xab; 32]));
        let sealer = format!("{:?}", Sealer::new([0xab; 32]));
        for debug in [keyer, sealer] {
            assert!(debug.contains("REDACTED"));
            assert!(!debug.contains("abab") && !debug.contains("171"));
        }
    }

    #[test]
    fn sealed_values_open_to_the_plaintext() {
        let sealer = Sealer::new([9; 32]);
        let sealed = sealer.seal(b"hello");
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(sealer.open(&sealed).unwrap(), b"hello");
        assert_eq!(sealer.open(&sealer.seal(b"")).unwrap(), b"");
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let sealer = Sealer::new([9; 32]);
        assert_ne!(sealer.seal(b"same"), sealer.seal(b"same"));
    }

    #[test]
    fn tampered_or_foreign_seals_do_not_open() {
        let sealer = Sealer::new([9; 32]);
        let sealed = sealer.seal(b"hello");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(sealer.open(&tampered), Err(SealError::Tampered), "byte {i}");
        }
        assert_eq!(
            Sealer::new([10; 32]).open(&sealed),
            Err(SealError::Tampered)
        );
        assert_eq!(
            sealer.open(&sealed[..NONCE_LEN + TAG_LEN - 1]),
            Err(SealError::TooShort)
        );
    }

    #[test]
    fn id_numbers_seal_and_open() {
        let sealer = Sealer::new([4; 32]);
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let person = PersonKey::from_bytes([7; 32]);
        let sealed = sealer.seal_id(&id, &person);
        assert!(!sealed.windows(8).any(|w| w == b"19491231"));
        assert_eq!(sealer.open_id(&sealed, &person, IdSeal::Bound), Ok(id));
        assert_eq!(
            sealer.open_id(&sealer.seal(b"not a number"), &person, IdSeal::Legacy),
            Err(SealError::NotAnIdNumber)
        );
    }

    #[test]
    fn a_sealed_id_number_opens_only_in_its_own_persons_row() {
        let sealer = Sealer::new([4; 32]);
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let (mine, theirs) = (
            PersonKey::from_bytes([7; 32]),
            PersonKey::from_bytes([8; 32]),
        );
        let sealed = sealer.seal_id(&id, &mine);
        assert_eq!(
            sealer.open_id(&sealed, &theirs, IdSeal::Bound),
            Err(SealError::Tampered)
        );
        // Nor by claiming it predates binding.
        assert_eq!(
            sealer.open_id(&sealed, &theirs, IdSeal::Legacy),
            Err(SealError::Tampered)
        );
        // A legacy seal opens as legacy, and re-seals bound.
        let legacy = sealer.seal(id.expose().as_bytes());
        let opened = sealer
            .open_id(&legacy, &mine, IdSeal::Legacy)
            .expect("opens");
        let resealed = sealer.seal_id(&opened, &mine);
        assert_eq!(sealer.open_id(&resealed, &mine, IdSeal::Bound), Ok(id));
    }
}
