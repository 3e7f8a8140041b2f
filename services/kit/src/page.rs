//! Opaque keyset page tokens: the last id a page showed, encoded so that
//! callers pass them back rather than build them.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};

/// The token of the page after the one that ended at `last_id`; `kind`
/// tells tokens of different lists apart.
pub fn encode(kind: &str, last_id: i64) -> String {
    B64.encode(format!("{kind}:{last_id}"))
}

/// `Some(None)` for the first page (an empty token), `Some(Some(id))` for a
/// token of this kind, `None` for anything else.
pub fn decode(kind: &str, token: &str) -> Option<Option<i64>> {
    if token.is_empty() {
        return Some(None);
    }
    let text = String::from_utf8(B64.decode(token).ok()?).ok()?;
    let id = text.strip_prefix(kind)?.strip_prefix(':')?.parse().ok()?;
    Some(Some(id))
}

/// A requested page size, defaulted when zero and capped.
pub fn size(requested: u32, default: u32, max: u32) -> u32 {
    if requested == 0 {
        default
    } else {
        requested.min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_keep_their_kind() {
        let token = encode("p", 42);
        assert_eq!(decode("p", &token), Some(Some(42)));
        assert_eq!(decode("r", &token), None);
        assert_eq!(decode("p", ""), Some(None));
        assert_eq!(decode("p", "not a token"), None);
    }

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(size(0, 50, 200), 50);
        assert_eq!(size(500, 50, 200), 200);
        assert_eq!(size(7, 50, 200), 7);
    }
}
