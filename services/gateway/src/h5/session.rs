//! The H5 pages' session: a signed cookie (HMAC-SHA256 with
//! `HUIMIN_SESSION_KEY`) holding the openid the OAuth flow verified and the
//! CSRF token bound to it, plus the short-lived pre-session cookie that ties
//! an OAuth `state` to the browser that started the flow.
//!
//! A signed cookie rather than a Redis session: the gateway stays stateless
//! and a page view costs no round trip. The price is that a session cannot be
//! revoked before it expires, which is why it lives hours, not weeks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, Mac};
use huimin_kit::openid::OpenId;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::SessionKey;

pub const SESSION_COOKIE: &str = "hm_session";
pub const OAUTH_COOKIE: &str = "hm_oauth";

/// How long a session lasts; WeChat's in-app browser re-runs the silent
/// OAuth flow after it, which the citizen does not notice.
pub const SESSION_TTL: Duration = Duration::from_secs(2 * 3600);
/// WeChat's code lives 5 minutes; the flow must finish within that.
pub const OAUTH_TTL: Duration = Duration::from_secs(600);

/// What the session cookie carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Set once the OAuth flow finished; pages that show nothing personal
    /// (disclosure, progress) work with a session without one.
    pub openid: Option<String>,
    /// The CSRF token every form of this session posts back.
    pub csrf: String,
    /// Unix seconds after which the cookie is refused.
    pub expires: u64,
}

impl Session {
    pub fn new(openid: Option<OpenId>) -> Self {
        Self {
            openid: openid.map(|o| o.as_str().to_owned()),
            csrf: random_token(),
            expires: now() + SESSION_TTL.as_secs(),
        }
    }

    /// The verified openid, when the session has one.
    pub fn openid(&self) -> Option<OpenId> {
        self.openid.as_deref().and_then(|o| OpenId::parse(o).ok())
    }

    /// A posted token matches this session's, compared in constant time.
    pub fn csrf_matches(&self, token: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The pre-session: which `state` this browser was sent to WeChat with and
/// where it wanted to go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthPending {
    pub state: String,
    /// A path under `/h5/`, never an outside address (no open redirect).
    pub return_to: String,
    pub expires: u64,
}

impl OAuthPending {
    pub fn new(return_to: &str) -> Self {
        Self {
            state: random_token(),
            return_to: return_to.to_owned(),
            expires: now() + OAUTH_TTL.as_secs(),
        }
    }
}

/// Signs and verifies cookie values: `base64(json).base64(hmac)`.
pub struct Signer<'a>(pub &'a SessionKey);

impl Signer<'_> {
    fn mac(&self, cookie: &str, payload: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0.0).expect("HMAC accepts a key of any length");
        // The cookie name is signed too: a valid pre-session value cannot be
        // replayed as a session.
        mac.update(cookie.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac
    }

    pub fn seal<T: Serialize>(&self, cookie: &str, value: &T) -> String {
        let json = serde_json::to_vec(value).expect("a session serializes");
        let payload = B64.encode(json);
        let tag = B64.encode(self.mac(cookie, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The value, if the signature is ours and it has not expired.
    pub fn open<T: for<'de> Deserialize<'de> + Expiring>(
        &self,
        cookie: &str,
        sealed: &str,
    ) -> Option<T> {
        let (payload, tag) = sealed.split_once('.')?;
        let tag = B64.decode(tag).ok()?;
        self.mac(cookie, payload).verify_slice(&tag).ok()?;
        let value: T = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (value.expires() > now()).then_some(value)
    }
}

pub trait Expiring {
    fn expires(&self) -> u64;
}

impl Expiring for Session {
    fn expires(&self) -> u64 {
        self.expires
    }
}

impl Expiring for OAuthPending {
    fn expires(&self) -> u64 {
        self.expires
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Lax always (Lax lets the
/// OAuth redirect back from WeChat carry the pre-session), Secure when the
/// pages are served over https.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/h5; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    )
}

/// 32 random bytes as URL-safe base64 letters and digits only, so it also
/// fits WeChat's `state` rule (a-zA-Z0-9, at most 128 bytes).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey([7; 32])
    }

    #[test]
    fn a_sealed_session_opens_with_the_same_key_only() {
        let session = Session::new(OpenId::parse("oWx-abc").ok());
        let sealed = Signer(&key()).seal(SESSION_COOKIE, &session);
        let opened: Option<Session> = Signer(&key()).open(SESSION_COOKIE, &sealed);
        assert_eq!(opened, Some(session));
        let other = SessionKey([8; 32]);
        assert!(
            Signer(&other)
                .open::<Session>(SESSION_COOKIE, &sealed)
                .is_none()
        );
    }

    #[test]
    fn a_tampered_payload_or_another_cookie_name_is_refused() {
        let sealed = Signer(&key()).seal(SESSION_COOKIE, &Session::new(None));
        let (payload, tag) = sealed.split_once('.').expect("sealed has a dot");
        let forged = Session {
            openid: Some("oWx-victim".into()),
            ..Session::new(None)
        };
        let forged_payload = B64.encode(serde_json::to_vec(&forged).expect("serializes"));
        let tampered = format!("{forged_payload}.{tag}");
        assert!(
            Signer(&key())
                .open::<Session>(SESSION_COOKIE, &tampered)
                .is_none()
        );
        assert!(
            Signer(&key())
                .open::<Session>(OAUTH_COOKIE, &format!("{payload}.{tag}"))
                .is_none()
        );
    }

    #[test]
    fn an_expired_session_is_refused() {
        let mut session = Session::new(None);
        session.expires = now() - 1;
        let sealed = Signer(&key()).seal(SESSION_COOKIE, &session);
        assert!(
            Signer(&key())
                .open::<Session>(SESSION_COOKIE, &sealed)
                .is_none()
        );
    }

    #[test]
    fn csrf_compares_exactly() {
        let session = Session::new(None);
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("nope"));
        assert!(!session.csrf_matches(""));
    }
}
