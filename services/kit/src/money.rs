//! Money in fen (分, 1/100 yuan), parsed once from the yuan that staff write in
//! files and forms. Shared by every service that reads amounts: integer
//! throughout, never a float, not even while parsing.

use std::fmt;

/// The largest amount a single entry may carry: 10^13 fen (a hundred billion yuan).
/// Far above any subsidy; the bound only keeps sums of many entries inside `i64`.
const MAX_FEN: i64 = 10_000_000_000_000;

/// Maps full-width ASCII forms (`１７０．５０`, typed with a Chinese input method) to
/// their ASCII counterparts and leaves everything else alone.
pub fn halfwidth(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// A digit string as a number, or `None` if it is empty, has a non-digit or overflows.
pub fn digits_value(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.bytes().try_fold(0i64, |acc, b| {
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })
}

// ---------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------

/// An amount of money in fen (分, 1/100 yuan). Integer throughout: amounts are never
/// floats, not even while parsing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(i64);

/// Why a text is not an amount of money. The `Display` text is for logs; staff get
/// [`MoneyError::message_zh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is not a number of yuan")]
    Format,
    #[error("amount has more than two decimals")]
    TooManyDecimals,
    #[error("amount is negative")]
    Negative,
    #[error("amount exceeds 10^13 fen")]
    TooLarge,
}

impl MoneyError {
    /// The message shown to county staff, in Simplified Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            MoneyError::Format => "金额格式不正确",
            MoneyError::TooManyDecimals => "金额最多两位小数",
            MoneyError::Negative => "金额不能为负数",
            MoneyError::TooLarge => "金额过大",
        }
    }
}

impl Fen {
    /// No money.
    pub const ZERO: Fen = Fen(0);

    /// An amount already in fen, e.g. read back from the database.
    pub fn from_fen(fen: i64) -> Fen {
        Fen(fen)
    }

    /// The amount in fen.
    pub fn fen(&self) -> i64 {
        self.0
    }

    /// Parses an amount in yuan as departments write it: `170`, `170.5`, `170.50`,
    /// `1,234.00`, `1234.5元`, `￥170`, with surrounding spaces and full-width digits.
    ///
    /// Zero parses (the caller decides whether zero is allowed); negative amounts, more
    /// than two decimals and amounts above 10^13 fen do not. A reversal is a kind of
    /// entry, not a negative amount, so a minus sign is always an error here.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        let text = halfwidth(text);
        let mut rest = text.trim();
        rest = rest
            .strip_prefix('￥')
            .or_else(|| rest.strip_prefix('¥'))
            .unwrap_or(rest)
            .trim_start();
        rest = rest.strip_suffix('元').unwrap_or(rest).trim_end();
        let (negative, rest) = match rest.strip_prefix('-') {
            Some(unsigned) => (true, unsigned.trim_start()),
            None => (false, rest),
        };
        let (whole, decimals) = match rest.split_once('.') {
            Some((whole, decimals)) => (whole, Some(decimals)),
            None => (rest, None),
        };
        let whole = strip_thousands_separators(whole).ok_or(MoneyError::Format)?;
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Format);
        }
        let cents = match decimals {
            None => 0,
            Some(decimals) => {
                if decimals.is_empty() || !decimals.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(MoneyError::Format);
                }
                if decimals.len() > 2 {
                    return Err(MoneyError::TooManyDecimals);
                }
                let value = digits_value(decimals).ok_or(MoneyError::Format)?;
                if decimals.len() == 1 {
                    value * 10
                } else {
                    value
                }
            }
        };
        if negative {
            return Err(MoneyError::Negative);
        }
        // Leading zeros cannot overflow; anything else that does is too large anyway.
        let whole = digits_value(whole.trim_start_matches('0'))
            .or_else(|| whole.bytes().all(|b| b == b'0').then_some(0))
            .ok_or(MoneyError::TooLarge)?;
        let fen = whole
            .checked_mul(100)
            .and_then(|fen| fen.checked_add(cents))
            .ok_or(MoneyError::TooLarge)?;
        if fen > MAX_FEN {
            return Err(MoneyError::TooLarge);
        }
        Ok(Fen(fen))
    }

    /// The sum, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

/// `1,234,567` → `1234567`; `None` when commas are not thousands separators (`12,34`),
/// which might be a decimal comma and must not be guessed.
fn strip_thousands_separators(whole: &str) -> Option<String> {
    if !whole.contains(',') {
        return Some(whole.to_owned());
    }
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    if first.is_empty() || first.len() > 3 {
        return None;
    }
    let mut out = first.to_owned();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        out.push_str(group);
    }
    Some(out)
}

/// Yuan with two decimals: `170.00`, `-170.00`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn yuan(text: &str) -> Result<i64, MoneyError> {
        Fen::parse_yuan(text).map(|fen| fen.fen())
    }

    #[test]
    fn amounts_parse_as_departments_write_them() {
        let cases = [
            ("170", 17_000),
            ("170.5", 17_050),
            ("170.50", 17_050),
            ("0.01", 1),
            ("1,234.00", 123_400),
            ("1,234,567.8", 123_456_780),
            ("1234.5元", 123_450),
            ("￥170", 17_000),
            ("¥170", 17_000),
            ("  170 ", 17_000),
            ("¥ 170 元", 17_000),
            ("１７０．５", 17_050),
            ("0170", 17_000),
            ("0", 0),
            ("0.00", 0),
            ("100000000000", 10_000_000_000_000),
        ];
        for (text, fen) in cases {
            assert_eq!(yuan(text), Ok(fen), "{text}");
        }
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        let cases = [
            ("170.555", MoneyError::TooManyDecimals),
            ("170.500", MoneyError::TooManyDecimals),
            ("-170", MoneyError::Negative),
            ("-0.5", MoneyError::Negative),
            ("100000000000.01", MoneyError::TooLarge),
            ("99999999999999999999999", MoneyError::TooLarge),
            ("", MoneyError::Format),
            ("元", MoneyError::Format),
            ("abc", MoneyError::Format),
            ("170.", MoneyError::Format),
            (".5", MoneyError::Format),
            ("1.2.3", MoneyError::Format),
            ("12,34", MoneyError::Format),
            ("1 234", MoneyError::Format),
            ("1.7e2", MoneyError::Format),
            ("+170", MoneyError::Format),
            ("NaN", MoneyError::Format),
        ];
        for (text, error) in cases {
            assert_eq!(yuan(text), Err(error), "{text}");
        }
        assert_eq!(MoneyError::TooManyDecimals.message_zh(), "金额最多两位小数");
    }

    #[test]
    fn fen_displays_as_yuan_with_two_decimals() {
        assert_eq!(Fen::from_fen(17_000).to_string(), "170.00");
        assert_eq!(Fen::from_fen(17_050).to_string(), "170.50");
        assert_eq!(Fen::from_fen(7).to_string(), "0.07");
        assert_eq!(Fen::from_fen(-17_000).to_string(), "-170.00");
        assert_eq!(Fen::from_fen(-5).to_string(), "-0.05");
        assert_eq!(Fen::from_fen(i64::MIN).to_string(), "-92233720368547758.08");
    }
}
