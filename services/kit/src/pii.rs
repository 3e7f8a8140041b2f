//! Personal data helpers every service needs: citizen ID numbers, person keys and masking for
//! disclosure. The keys that make person keys and seal numbers at rest are identity's own
//! (`huimin_identity::keys`).
//!
//! Everything here is shaped so that the careless path does not leak: an [`IdNumber`] has no
//! `Display` and its `Debug` is masked, and errors never carry the input.

use std::fmt;

use base64::Engine as _;
use chrono::{Datelike, NaiveDate};
use secrecy::zeroize::Zeroize;

/// ISO 7064 MOD 11-2 weights of the first 17 digits (GB 11643-1999).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder 0..=10.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character for the first 17 characters of an ID number.
///
/// `first17` holds ASCII digits (`b'0'..=b'9'`); [`IdNumber::parse`] checks that before calling.
pub fn check_digit(first17: &[u8; 17]) -> char {
    debug_assert!(
        first17.iter().all(u8::is_ascii_digit),
        "check_digit takes ASCII digits"
    );
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    char::from(CHECK_CHARS[(sum % 11) as usize])
}

/// Why a string is not a citizen ID number.
///
/// The `Display` text is for developers and logs; citizens get [`IdNumberError::message_zh`].
/// Neither ever contains the number itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("ID number must be 18 characters")]
    Length,
    #[error("ID number must be 17 digits followed by a digit or X")]
    Characters,
    #[error("ID number region code is not plausible")]
    Region,
    #[error("ID number birth date is not a real date between 1900-01-01 and today")]
    BirthDate,
    #[error("ID number check digit does not match")]
    CheckDigit,
}

impl IdNumberError {
    /// The message shown to a citizen, in Simplified Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            IdNumberError::Length => "身份证号应为18位",
            IdNumberError::Characters => "身份证号含有非法字符",
            IdNumberError::Region => "身份证号地区码不正确",
            IdNumberError::BirthDate => "身份证号中的出生日期不正确",
            IdNumberError::CheckDigit => "身份证号校验位错误，请核对",
        }
    }
}

/// A citizen ID number (居民身份证号码, GB 11643-1999): 18 characters, normalised to an
/// uppercase `X` check character.
///
/// There is deliberately no `Display` and no `as_str`: reading the clear number takes a visible
/// [`IdNumber::expose`], and `{:?}` prints only the [masked](IdNumber::masked) form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

impl IdNumber {
    /// Parses an ID number, checking its birth date against today's date in China (UTC+8).
    pub fn parse(s: &str) -> Result<IdNumber, IdNumberError> {
        Self::parse_as_of(s, crate::clock::china_today())
    }

    /// Parses an ID number whose birth date must not be after `today`.
    ///
    /// Surrounding whitespace is ignored and a lowercase `x` is accepted.
    pub fn parse_as_of(s: &str, today: NaiveDate) -> Result<IdNumber, IdNumberError> {
        let s = s.trim();
        if s.chars().count() != 18 {
            return Err(IdNumberError::Length);
        }
        // 18 chars; if any is not ASCII the byte length differs and the checks below fail.
        let bytes = s.as_bytes();
        if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(IdNumberError::Characters);
        }
        let last = bytes[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::Characters);
        }
        // Province codes start with 1-8 (11 北京 … 82 澳门); 0 and 9 are never assigned.
        if !(b'1'..=b'8').contains(&bytes[0]) {
            return Err(IdNumberError::Region);
        }
        let birth = birth_date_of(bytes).ok_or(IdNumberError::BirthDate)?;
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).expect("1900-01-01 is a date");
        if birth < earliest || birth > today {
            return Err(IdNumberError::BirthDate);
        }
        let first17: &[u8; 17] = bytes[..17].try_into().expect("checked length 18 above");
        if check_digit(first17) as u8 != last {
            return Err(IdNumberError::CheckDigit);
        }
        let mut normalised = s.to_owned();
        normalised.make_ascii_uppercase();
        Ok(IdNumber(normalised))
    }

    /// Builds a valid number from a 6-digit region code, a birth date and a 3-digit sequence
    /// number (odd for men, even for women), computing the check digit.
    ///
    /// # Panics
    /// If `region6` is not six ASCII digits, `seq3` exceeds 999 or `birth` is outside years
    /// 0..=9999: these are programming errors in the caller, not input to validate.
    pub fn from_parts(region6: &str, birth: NaiveDate, seq3: u16) -> IdNumber {
        assert!(
            region6.len() == 6 && region6.bytes().all(|b| b.is_ascii_digit()),
            "region code must be six ASCII digits"
        );
        assert!(seq3 <= 999, "sequence number must be at most 999");
        assert!(
            (0..=9999).contains(&birth.year()),
            "birth year must have four digits"
        );
        let mut first17 = [0u8; 17];
        first17[..6].copy_from_slice(region6.as_bytes());
        write_digits(&mut first17[6..10], birth.year() as u32);
        write_digits(&mut first17[10..12], birth.month());
        write_digits(&mut first17[12..14], birth.day());
        write_digits(&mut first17[14..17], u32::from(seq3));
        let mut s = String::with_capacity(18);
        s.extend(first17.iter().map(|&b| char::from(b)));
        s.push(check_digit(&first17));
        IdNumber(s)
    }

    /// The clear number. Named so that every use is a visible, deliberate decision.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 出生日期, characters 7-14.
    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(self.0.as_bytes()).expect("an IdNumber holds a checked birth date")
    }

    /// Whether the 17th digit (the sequence number's last) is odd, which marks a man.
    pub fn is_male(&self) -> bool {
        (self.0.as_bytes()[16] - b'0') % 2 == 1
    }

    /// The 6-digit region code (地址码) where the number was issued.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    /// The form used in public disclosure and logs: `4509**********1234`.
    pub fn masked(&self) -> String {
        format!("{}**********{}", &self.0[..4], &self.0[14..])
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

/// The birth date in characters 7-14 of `bytes`, if those are digits forming a real date.
fn birth_date_of(bytes: &[u8]) -> Option<NaiveDate> {
    let field = bytes.get(6..14)?;
    if !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        field[r]
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
    };
    NaiveDate::from_ymd_opt(num(0..4) as i32, num(4..6), num(6..8))
}

/// Writes `n` as zero-padded ASCII digits filling `out`.
fn write_digits(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// How services key a person without holding the ID number: HMAC-SHA256 of the normalised
/// number under a secret key that only identity holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey([u8; 32]);

/// A person key that is not 64 hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("person key must be 64 hex characters")]
pub struct PersonKeyError;

impl PersonKey {
    pub fn from_bytes(bytes: [u8; 32]) -> PersonKey {
        PersonKey(bytes)
    }

    /// A key read from a database column or protobuf `bytes` field; `None` unless 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<PersonKey> {
        bytes.try_into().ok().map(PersonKey)
    }

    pub fn from_hex(s: &str) -> Result<PersonKey, PersonKeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| PersonKeyError)?;
        Ok(PersonKey(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", self.to_hex())
    }
}

/// Masks a name for public disclosure lists (公示), by characters: `张` → `*`, `张三` → `张*`,
/// `张小明` → `张*明`, `欧阳小明` → `欧**明`.
///
/// Names of ethnic minorities written with a separator dot (`阿依古丽·买买提`) keep only their
/// first and last characters too (`阿******提`): the dot is masked like any other character so
/// the lengths of the parts are not disclosed.
pub fn mask_name(name: &str) -> String {
    // A stray separator at either end would otherwise be the "last character" kept in clear.
    let name = name
        .trim()
        .trim_matches(|c: char| is_name_separator(c) || c.is_whitespace());
    let mut chars = name.chars();
    let (Some(first), Some(last)) = (chars.next(), chars.next_back()) else {
        return if name.is_empty() {
            String::new()
        } else {
            "*".to_owned()
        };
    };
    let middle = chars.count();
    let mut masked = String::with_capacity(name.len());
    masked.push(first);
    if middle == 0 {
        masked.push('*');
    } else {
        masked.extend(std::iter::repeat_n('*', middle));
        masked.push(last);
    }
    masked
}

/// Separator dots seen in transliterated names: `·` (U+00B7) and look-alikes `•`, `・`, `．`, `‧`.
fn is_name_separator(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}' | '\u{2022}' | '\u{30FB}' | '\u{FF0E}' | '\u{2027}'
    )
}

/// A key variable that does not hold a 32-byte key. Names the variable, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{name} is not valid standard base64")]
    NotBase64 { name: String },
    #[error("{name} must decode to 32 bytes, got {len}")]
    WrongLength { name: String, len: usize },
}

/// Decodes a 32-byte key given in standard base64 (as in a Kubernetes Secret), where `name` is
/// the configuration variable it came from, for the error message.
pub fn decode_key_b64(name: &str, value: &str) -> Result<[u8; 32], KeyError> {
    let mut decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| KeyError::NotBase64 {
            name: name.to_owned(),
        })?;
    let key: Result<[u8; 32], _> = decoded.as_slice().try_into();
    let len = decoded.len();
    decoded.zeroize();
    key.map_err(|_| KeyError::WrongLength {
        name: name.to_owned(),
        len,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn gb11643_sample_number_is_valid() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.region_code(), "110105");
        assert!(!id.is_male());
    }

    #[test]
    fn check_digit_of_sample_is_x() {
        assert_eq!(check_digit(b"11010519491231002"), 'X');
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        assert_eq!(
            IdNumber::parse("110105194912310021"),
            Err(IdNumberError::CheckDigit)
        );
    }

    #[test]
    fn lowercase_x_and_whitespace_are_normalised() {
        let id = IdNumber::parse("  11010519491231002x\n").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
    }

    #[test]
    fn impossible_birth_date_is_rejected() {
        // 1999-02-30 does not exist; give it a correct check digit so only the date is wrong.
        let mut first17 = *b"45092319990230001";
        let check = check_digit(&first17);
        let s = format!("{}{check}", std::str::from_utf8(&first17).unwrap());
        assert_eq!(IdNumber::parse(&s), Err(IdNumberError::BirthDate));

        first17.copy_from_slice(b"45092318991231001");
        let s = format!(
            "{}{}",
            std::str::from_utf8(&first17).unwrap(),
            check_digit(&first17)
        );
        assert_eq!(IdNumber::parse(&s), Err(IdNumberError::BirthDate));
    }

    #[test]
    fn birth_date_after_today_is_rejected() {
        let id = IdNumber::from_parts("450923", date(2026, 11, 29), 1);
        assert_eq!(
            IdNumber::parse_as_of(id.expose(), date(2026, 11, 28)),
            Err(IdNumberError::BirthDate)
        );
        assert!(IdNumber::parse_as_of(id.expose(), date(2026, 11, 29)).is_ok());
    }

    #[test]
    fn malformed_numbers_give_their_reason() {
        assert_eq!(IdNumber::parse("4509231990"), Err(IdNumberError::Length));
        assert_eq!(
            IdNumber::parse("4509231990010100123"),
            Err(IdNumberError::Length)
        );
        assert_eq!(
            IdNumber::parse("45092319900101001Y"),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            IdNumber::parse("4509231990010100A1"),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            IdNumber::parse("45092319900101001１"),
            Err(IdNumberError::Characters)
        );
        let foreign = IdNumber::from_parts("950923", date(1990, 1, 1), 1);
        assert_eq!(
            IdNumber::parse(foreign.expose()),
            Err(IdNumberError::Region)
        );
    }

    #[test]
    fn errors_never_contain_the_number() {
        let input = "110105194912310021";
        let err = IdNumber::parse(input).unwrap_err();
        assert!(!err.to_string().contains("110105"));
        assert!(!format!("{err:?}").contains("110105"));
        assert_eq!(err.message_zh(), "身份证号校验位错误，请核对");
    }

    #[test]
    fn numbers_built_from_parts_round_trip_through_parse() {
        let cases = [
            ("450923", date(1958, 3, 7), 31, true),
            ("450923", date(2000, 2, 29), 12, false),
            ("450923", date(1900, 1, 1), 0, false),
            ("110105", date(1949, 12, 31), 2, false),
            ("820000", date(2026, 11, 28), 999, true),
        ];
        for (region, birth, seq, male) in cases {
            let built = IdNumber::from_parts(region, birth, seq);
            let parsed = IdNumber::parse_as_of(built.expose(), date(2026, 11, 28)).unwrap();
            assert_eq!(parsed, built);
            assert_eq!(parsed.region_code(), region);
            assert_eq!(parsed.birth_date(), birth);
            assert_eq!(parsed.is_male(), male);
        }
        assert_eq!(
            IdNumber::from_parts("110105", date(1949, 12, 31), 2).expose(),
            "11010519491231002X"
        );
    }

    #[test]
    #[should_panic(expected = "six ASCII digits")]
    fn from_parts_rejects_a_short_region() {
        IdNumber::from_parts("4509", date(1990, 1, 1), 1);
    }

    #[test]
    fn masked_form_keeps_first_and_last_four() {
        let id = IdNumber::from_parts("450923", date(1985, 6, 15), 123);
        let masked = id.masked();
        assert_eq!(masked.len(), 18);
        assert!(masked.starts_with("4509**********"));
        assert!(masked.ends_with(&id.expose()[14..]));
    }

    #[test]
    fn debug_of_id_number_shows_only_the_masked_form() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let debug = format!("{id:?}");
        assert_eq!(debug, "IdNumber(1101**********002X)");
        assert!(!debug.contains("19491231"));
        assert!(!debug.contains("11010519"));
    }

    #[test]
    fn names_are_masked_by_character() {
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name(" 张小明 "), "张*明");
        assert_eq!(mask_name("欧阳小明"), "欧**明");
        assert_eq!(mask_name("阿依古丽·买买提"), "阿******提");
        assert_eq!(mask_name("买买提·"), "买*提");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn person_key_round_trips_through_hex_and_bytes() {
        let key = PersonKey::from_bytes([3; 32]);
        assert_eq!(PersonKey::from_hex(&key.to_hex()), Ok(key));
        assert_eq!(PersonKey::from_slice(key.as_bytes()), Some(key));
        assert_eq!(PersonKey::from_slice(&[0; 31]), None);
        assert_eq!(PersonKey::from_hex("abc"), Err(PersonKeyError));
        assert_eq!(format!("{key:?}"), format!("PersonKey({})", key.to_hex()));
    }

    #[test]
    fn keys_decode_from_base64_with_named_errors() {
        let encoded = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
        assert_eq!(
            decode_key_b64("HUIMIN_SEAL_KEY", &format!("{encoded}\n")),
            Ok([5; 32])
        );

        let short = base64::engine::general_purpose::STANDARD.encode([5u8; 16]);
        let err = decode_key_b64("HUIMIN_SEAL_KEY", &short).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HUIMIN_SEAL_KEY must decode to 32 bytes, got 16"
        );

        let err = decode_key_b64("HUIMIN_PERSON_KEY", "not base64!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "HUIMIN_PERSON_KEY is not valid standard base64"
        );
        assert!(!err.to_string().contains("not base64!"));
    }
}
