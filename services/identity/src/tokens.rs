//! Issuing tokens: identity holds the one Ed25519 signing key; every service
//! verifies with the public key (`huimin_kit::auth::TokenVerifier`).

use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use huimin_kit::auth::{Caller, Role, SUITE, TokenVerifier, write_token};

/// Issues tokens (identity only).
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<SigningKey>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: Arc::new(SigningKey::from_bytes(&seed)),
        }
    }

    pub fn generate() -> Self {
        Self {
            key: Arc::new(SigningKey::generate(&mut rand::rngs::OsRng)),
        }
    }

    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier::from_public_key(self.key.verifying_key().to_bytes())
            .expect("the key of a signing key is a valid public key")
    }

    /// Signs a token for `sub` valid for `ttl` at every service of the suite
    /// (a staff member's: the console calls each with it); returns it with
    /// its expiry.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        scope: Option<&str>,
        ttl: Duration,
    ) -> (String, DateTime<Utc>) {
        self.issue_for(sub, role, scope, SUITE, ttl)
    }

    /// Signs a token for `sub` that only the services in `audience` accept,
    /// with a fresh random id to revoke it by.
    pub fn issue_for(
        &self,
        sub: &str,
        role: Role,
        scope: Option<&str>,
        audience: &[&str],
        ttl: Duration,
    ) -> (String, DateTime<Utc>) {
        let now = Utc::now();
        let exp = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
        let claims = Caller {
            sub: sub.to_owned(),
            role,
            scope: scope.map(str::to_owned),
            iat: now.timestamp(),
            exp: exp.timestamp(),
            aud: audience
                .iter()
                .map(|service| (*service).to_owned())
                .collect(),
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        (write_token(&self.key, &claims), exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_with_the_public_key_only() {
        let signer = TokenSigner::generate();
        let verifier =
            TokenVerifier::from_public_key(signer.verifier().public_key()).expect("valid key");
        let (token, _) = signer.issue("ledger", Role::Service, None, Duration::from_secs(60));
        let caller = verifier.verify(&token).expect("fresh token verifies");
        assert_eq!(
            (caller.sub.as_str(), caller.role),
            ("ledger", Role::Service)
        );
        let stranger = TokenSigner::generate().verifier();
        assert!(stranger.verify(&token).is_err());
    }

    #[test]
    fn a_seed_restores_the_same_key() {
        let signer = TokenSigner::generate();
        let again = TokenSigner::from_seed(signer.seed());
        assert_eq!(
            again.verifier().public_key(),
            signer.verifier().public_key()
        );
        assert_eq!(format!("{again:?}"), "TokenSigner(..)");
    }
}
