//! Bank accounts as the cross-checks compare them: a keyed hash of the account's digits
//! (HMAC-SHA256 under `HUIMIN_BANK_HMAC_KEY`), so one account paid for several households
//! is found without the account ever being stored or shown in clear.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use huimin_kit::money::halfwidth;

/// Hashes bank accounts under ledger's key.
#[derive(Clone)]
pub struct BankKeyer {
    key: [u8; 32],
}

impl std::fmt::Debug for BankKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BankKeyer(..)")
    }
}

impl BankKeyer {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The hash of an account as a roll writes it (spaces, dashes and full-width digits
    /// allowed); `None` when it holds no digit.
    pub fn hash(&self, account: &str) -> Option<[u8; 32]> {
        let digits: String = halfwidth(account)
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if digits.is_empty() {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(digits.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_account_however_written_is_one_hash() {
        let keyer = BankKeyer::new([7; 32]);
        let plain = keyer.hash("6228480012345678");
        assert!(plain.is_some());
        assert_eq!(keyer.hash("6228 4800-1234 5678"), plain);
        assert_eq!(keyer.hash("６２２８４８００１２３４５６７８"), plain);
        assert_ne!(keyer.hash("6228480012345679"), plain);
        assert_ne!(BankKeyer::new([8; 32]).hash("6228480012345678"), plain);
        assert_eq!(keyer.hash(" - "), None);
    }
}
