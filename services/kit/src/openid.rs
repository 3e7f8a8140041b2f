//! A WeChat user's id within the county's Official Account (`OpenID`), as
//! the gateway verified it: every edge (webhook, H5 pages) and every service
//! that authorizes a citizen takes one.

use std::fmt;

/// A WeChat openid: 1 to 128 ASCII letters, digits, `-` or `_`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OpenId(String);

/// Why a string is not an openid; never carries the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("openid must be 1 to 128 ASCII letters, digits, '-' or '_'")]
pub struct OpenIdError;

impl OpenIdError {
    /// What a citizen or a caller is told.
    pub const MESSAGE_ZH: &'static str = "openid 格式不正确";
}

impl OpenId {
    pub fn parse(s: &str) -> Result<Self, OpenIdError> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(OpenIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OpenId {
    /// An openid is a pseudonym of a citizen: debug output shows its first characters only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(4).collect();
        write!(f, "OpenId({shown}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_shaped_ids_parse_and_trim() {
        let id = OpenId::parse(" oWx-a_9Z ").expect("valid");
        assert_eq!(id.as_str(), "oWx-a_9Z");
    }

    #[test]
    fn empty_long_or_odd_ids_are_refused() {
        assert_eq!(OpenId::parse(""), Err(OpenIdError));
        assert_eq!(OpenId::parse(&"a".repeat(129)), Err(OpenIdError));
        assert_eq!(OpenId::parse("o wx"), Err(OpenIdError));
        assert_eq!(OpenId::parse("o<wx>"), Err(OpenIdError));
        assert!(OpenId::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn debug_does_not_show_the_whole_id() {
        let id = OpenId::parse("oWxSecretPseudonym").expect("valid");
        assert_eq!(format!("{id:?}"), "OpenId(oWxS…)");
    }
}
