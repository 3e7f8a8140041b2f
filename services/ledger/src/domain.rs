//! The ledger's value types: payment periods, masked bank accounts and
//! entry kinds, each parsed once from the text departments write.

use std::{fmt, str::FromStr};

use chrono::{Datelike, NaiveDate};

use huimin_kit::money::{digits_value, halfwidth};

/// Money lives in kit, shared with registry; re-exported where ledger always had it.
pub use huimin_kit::money::{Fen, MoneyError};

// ---------------------------------------------------------------------------------------
// Periods
// ---------------------------------------------------------------------------------------

/// How often a subsidy program pays (发放周期).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodKind {
    Monthly,
    Quarterly,
    Yearly,
    OneOff,
}

/// A text that names no period kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown period kind")]
pub struct PeriodKindError;

impl PeriodKindError {
    /// The message shown to county staff, in Simplified Chinese.
    pub fn message_zh(&self) -> &'static str {
        "发放周期应为按月、按季、按年或一次性"
    }
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 4] = [
        PeriodKind::Monthly,
        PeriodKind::Quarterly,
        PeriodKind::Yearly,
        PeriodKind::OneOff,
    ];

    /// The stored form (database, protobuf-facing strings).
    pub fn as_str(&self) -> &'static str {
        match self {
            PeriodKind::Monthly => "monthly",
            PeriodKind::Quarterly => "quarterly",
            PeriodKind::Yearly => "yearly",
            PeriodKind::OneOff => "one_off",
        }
    }

    /// Reads the stored form only, exactly as [`PeriodKind::as_str`] writes it: what the
    /// database or the cache holds is never guessed at (an unknown kind is an error, not
    /// one-off), and labels are for people, not storage.
    pub fn from_stored(text: &str) -> Result<PeriodKind, PeriodKindError> {
        PeriodKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(PeriodKindError)
    }

    /// The label county staff read.
    pub fn label_zh(&self) -> &'static str {
        match self {
            PeriodKind::Monthly => "按月",
            PeriodKind::Quarterly => "按季",
            PeriodKind::Yearly => "按年",
            PeriodKind::OneOff => "一次性",
        }
    }
}

/// Accepts the stored form (`monthly`) and the Chinese label (`按月`).
impl FromStr for PeriodKind {
    type Err = PeriodKindError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        PeriodKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text || kind.label_zh() == text)
            .ok_or(PeriodKindError)
    }
}

impl fmt::Display for PeriodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not a period of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("period is not in the form expected for a {0} program")]
    Format(PeriodKind),
    #[error("period year is outside 2000..=2100")]
    YearOutOfRange,
}

impl PeriodError {
    /// The message shown to county staff, in Simplified Chinese, naming the expected form.
    pub fn message_zh(&self) -> &'static str {
        match self {
            PeriodError::Format(PeriodKind::Monthly) => "发放期间应为年月，如2026-07",
            PeriodError::Format(PeriodKind::Quarterly) => "发放期间应为年份和季度，如2026Q3",
            PeriodError::Format(PeriodKind::Yearly) => "发放期间应为年份，如2026",
            PeriodError::Format(PeriodKind::OneOff) => "一次性发放的期间应为年份，如2026",
            PeriodError::YearOutOfRange => "发放期间的年份应在2000至2100之间",
        }
    }
}

/// The period a payment is for (发放期间): a month, a quarter or a year, depending on
/// the program's [`PeriodKind`]. Held in one canonical text (`2026-07`, `2026-Q3`,
/// `2026`) plus the first day it covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Period {
    kind: PeriodKind,
    text: String,
    start: NaiveDate,
}

impl Period {
    /// Parses a period as departments write it.
    ///
    /// - monthly: `2026-07`, `2026-7`, `202607`, `2026/07`, `2026年7月`, `2026年7月份`,
    ///   and a date such as `2026/7/1` (what a CSV saved from Excel holds for a date cell);
    /// - quarterly: `2026Q3`, `2026-Q3`, `2026年第3季度`, `2026年三季度`, `2026年第三季`;
    /// - yearly and one-off: `2026`, `2026年`, `2026年度`.
    ///
    /// `2026.07` is refused on purpose: typed into Excel it becomes the number 2026.07,
    /// and October would come back as `2026.1`.
    pub fn parse(kind: PeriodKind, text: &str) -> Result<Period, PeriodError> {
        let text = halfwidth(text);
        let text = text.trim();
        let format = PeriodError::Format(kind);
        let year_digits = text.get(..4).ok_or(format)?;
        let year = digits_value(year_digits).ok_or(format)?;
        let rest = &text[4..];
        let (month, text) = match kind {
            PeriodKind::Monthly => {
                let month = month_part(rest).ok_or(format)?;
                (month, format!("{year:04}-{month:02}"))
            }
            PeriodKind::Quarterly => {
                let quarter = quarter_part(rest).ok_or(format)?;
                (quarter * 3 - 2, format!("{year:04}-Q{quarter}"))
            }
            PeriodKind::Yearly | PeriodKind::OneOff => {
                if !matches!(rest, "" | "年" | "年度") {
                    return Err(format);
                }
                (1, format!("{year:04}"))
            }
        };
        if !(2000..=2100).contains(&year) {
            return Err(PeriodError::YearOutOfRange);
        }
        let start = i32::try_from(year)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, month, 1))
            .ok_or(format)?;
        Ok(Period { kind, text, start })
    }

    /// Rebuilds a period from its canonical text, as stored in the database.
    pub fn from_text(kind: PeriodKind, text: &str) -> Result<Period, PeriodError> {
        Period::parse(kind, text)
    }

    /// The canonical text: `2026-07`, `2026-Q3` or `2026`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first day the period covers.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    pub fn year(&self) -> i32 {
        self.start.year()
    }

    /// The period as county staff and the public read it: `2026年7月`, `2026年第3季度`,
    /// `2026年度`.
    pub fn label_zh(&self) -> String {
        let year = self.year();
        match self.kind {
            PeriodKind::Monthly => format!("{year}年{}月", self.start.month()),
            PeriodKind::Quarterly => format!("{year}年第{}季度", self.start.month().div_ceil(3)),
            PeriodKind::Yearly | PeriodKind::OneOff => format!("{year}年度"),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A one- or two-digit number in `1..=12`.
fn month_number(digits: &str) -> Option<u32> {
    if digits.len() > 2 {
        return None;
    }
    let month = u32::try_from(digits_value(digits)?).ok()?;
    (1..=12).contains(&month).then_some(month)
}

/// The month after a 4-digit year: `-07`, `/7`, `07` (as in `202607`), `年7月`, or a
/// whole date `-07-15` / `/7/1`, whose month is taken.
fn month_part(rest: &str) -> Option<u32> {
    if let Some(chinese) = rest.strip_prefix('年') {
        let chinese = chinese
            .strip_suffix("月份")
            .or_else(|| chinese.strip_suffix('月'))?;
        return month_number(chinese);
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        // `202607`: exactly two digits, so `20267` stays ambiguous and is refused.
        return month_number(rest).filter(|_| rest.len() == 2);
    }
    let separator = rest.chars().next().filter(|c| matches!(c, '-' | '/'))?;
    let mut parts = rest[1..].split(separator);
    let month = month_number(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(month),
        (Some(day), None) => {
            let day = u32::try_from(digits_value(day).filter(|_| day.len() <= 2)?).ok()?;
            // Any real day of that month; the year is checked by the caller, so a leap
            // year is assumed here and 29 February always passes.
            NaiveDate::from_ymd_opt(2000, month, day).map(|_| month)
        }
        _ => None,
    }
}

/// The quarter after a 4-digit year: `Q3`, `-Q3`, `年第3季度`, `年三季度`, `年第三季`.
fn quarter_part(rest: &str) -> Option<u32> {
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    if let Some(digit) = rest.strip_prefix(['Q', 'q']) {
        return quarter_number(digit);
    }
    let rest = rest.strip_prefix('年')?;
    let rest = rest.strip_prefix('第').unwrap_or(rest);
    let number = rest
        .strip_suffix("季度")
        .or_else(|| rest.strip_suffix('季'))?;
    quarter_number(number)
}

fn quarter_number(text: &str) -> Option<u32> {
    match text {
        "1" | "一" => Some(1),
        "2" | "二" => Some(2),
        "3" | "三" => Some(3),
        "4" | "四" => Some(4),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Bank accounts
// ---------------------------------------------------------------------------------------

/// A text that is not a bank account number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bank account must be 12 to 19 digits")]
pub struct BankAccountError;

impl BankAccountError {
    /// The message shown to county staff, in Simplified Chinese.
    pub fn message_zh(&self) -> &'static str {
        "银行账号应为12至19位数字"
    }
}

/// Checks a bank account or card number (银行账号) and returns the only form the ledger
/// keeps: the first and last four digits, the rest starred
/// (`6228480012345678` → `6228********5678`). Spaces and dashes are ignored.
pub fn mask_bank_account(text: &str) -> Result<String, BankAccountError> {
    let digits: String = halfwidth(text)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BankAccountError);
    }
    let n = digits.len();
    Ok(format!(
        "{}{}{}",
        &digits[..4],
        "*".repeat(n - 8),
        &digits[n - 4..]
    ))
}

// ---------------------------------------------------------------------------------------
// Entry kinds
// ---------------------------------------------------------------------------------------

/// What a roll row does (类型): pays, or reverses an earlier payment (冲正).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Payment,
    Reversal,
}

/// A 类型 cell that is neither a payment nor a reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("entry kind must be payment or reversal")]
pub struct EntryKindError;

impl EntryKindError {
    /// The message shown to county staff, in Simplified Chinese.
    pub fn message_zh(&self) -> &'static str {
        "类型应为「发放」或「冲正」"
    }
}

impl EntryKind {
    /// Parses a roll's 类型 cell: empty or `发放` pays, `冲正` or `撤销` reverses.
    pub fn parse(text: &str) -> Result<EntryKind, EntryKindError> {
        match text.trim() {
            "" | "发放" => Ok(EntryKind::Payment),
            "冲正" | "撤销" => Ok(EntryKind::Reversal),
            _ => Err(EntryKindError),
        }
    }

    /// The stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Payment => "payment",
            EntryKind::Reversal => "reversal",
        }
    }

    /// Reads the stored form only (`payment`, `reversal`), as the database and the cache
    /// hold it; a roll's 类型 cell goes through [`EntryKind::parse`] instead.
    pub fn from_stored(text: &str) -> Result<EntryKind, EntryKindError> {
        match text {
            "payment" => Ok(EntryKind::Payment),
            "reversal" => Ok(EntryKind::Reversal),
            _ => Err(EntryKindError),
        }
    }

    /// The label county staff read.
    pub fn label_zh(&self) -> &'static str {
        match self {
            EntryKind::Payment => "发放",
            EntryKind::Reversal => "冲正",
        }
    }
}

/// What a roll file is: a pre-payment check (预审), refused on any breach, or the record of
/// payments the bank made (发放记录), stored whole with each breach becoming a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RollKind {
    #[default]
    PreCheck,
    Record,
}

impl RollKind {
    /// The stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            RollKind::PreCheck => "pre_check",
            RollKind::Record => "record",
        }
    }

    /// Reads the stored form only.
    pub fn from_stored(text: &str) -> Option<RollKind> {
        match text {
            "pre_check" => Some(RollKind::PreCheck),
            "record" => Some(RollKind::Record),
            _ => None,
        }
    }

    /// The label county staff read.
    pub fn label_zh(&self) -> &'static str {
        match self {
            RollKind::PreCheck => "预审",
            RollKind::Record => "发放记录",
        }
    }

    /// Whether a substantive breach (paid twice, grant repeated, above the ceiling)
    /// refuses the file, or is stored and found by the cross-checks.
    pub fn refuses_breaches(&self) -> bool {
        *self == RollKind::PreCheck
    }
}

/// Accepts the stored form (`payment`) and everything [`EntryKind::parse`] does.
impl FromStr for EntryKind {
    type Err = EntryKindError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "payment" => Ok(EntryKind::Payment),
            "reversal" => Ok(EntryKind::Reversal),
            other => EntryKind::parse(other),
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn period_kinds_round_trip_through_their_stored_form() {
        for kind in PeriodKind::ALL {
            assert_eq!(kind.as_str().parse::<PeriodKind>(), Ok(kind));
            assert_eq!(kind.label_zh().parse::<PeriodKind>(), Ok(kind));
        }
        assert_eq!("weekly".parse::<PeriodKind>(), Err(PeriodKindError));
        assert_eq!(PeriodKind::OneOff.as_str(), "one_off");
    }

    #[test]
    fn stored_period_kinds_are_read_strictly() {
        for kind in PeriodKind::ALL {
            assert_eq!(PeriodKind::from_stored(kind.as_str()), Ok(kind));
        }
        for text in ["weekly", "", "按月", " monthly", "MONTHLY", "one-off"] {
            assert_eq!(
                PeriodKind::from_stored(text),
                Err(PeriodKindError),
                "{text}"
            );
        }
    }

    #[test]
    fn stored_entry_kinds_are_read_strictly() {
        for kind in [EntryKind::Payment, EntryKind::Reversal] {
            assert_eq!(EntryKind::from_stored(kind.as_str()), Ok(kind));
        }
        for text in ["", "发放", "冲正", "Reversal", "refund"] {
            assert_eq!(EntryKind::from_stored(text), Err(EntryKindError), "{text}");
        }
    }

    fn period(kind: PeriodKind, text: &str) -> (String, NaiveDate) {
        let period = Period::parse(kind, text).unwrap();
        (period.text().to_owned(), period.start())
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn monthly_periods_accept_the_usual_spellings() {
        for text in [
            "2026-07",
            "2026-7",
            "202607",
            "2026年7月",
            "2026年07月",
            "2026年7月份",
            "2026/07",
            "2026/7/1",
            "2026-07-15",
            " 2026-07 ",
        ] {
            assert_eq!(
                period(PeriodKind::Monthly, text),
                ("2026-07".to_owned(), day(2026, 7, 1)),
                "{text}"
            );
        }
        assert_eq!(period(PeriodKind::Monthly, "2026-12").0, "2026-12");
    }

    #[test]
    fn monthly_periods_refuse_ambiguous_or_impossible_text() {
        for text in [
            "2026",
            "2026-13",
            "2026-0",
            "20267",
            "2026.07",
            "2026.1",
            "2026-07-32",
            "2026-Q3",
            "26-07",
            "July",
            "",
        ] {
            assert_eq!(
                Period::parse(PeriodKind::Monthly, text),
                Err(PeriodError::Format(PeriodKind::Monthly)),
                "{text}"
            );
        }
        assert_eq!(
            PeriodError::Format(PeriodKind::Monthly).message_zh(),
            "发放期间应为年月，如2026-07"
        );
    }

    #[test]
    fn quarterly_periods_accept_the_usual_spellings() {
        for text in [
            "2026Q3",
            "2026q3",
            "2026-Q3",
            "2026年第3季度",
            "2026年三季度",
            "2026年第三季度",
            "2026年3季度",
            "2026年第三季",
        ] {
            assert_eq!(
                period(PeriodKind::Quarterly, text),
                ("2026-Q3".to_owned(), day(2026, 7, 1)),
                "{text}"
            );
        }
        assert_eq!(period(PeriodKind::Quarterly, "2026Q1").1, day(2026, 1, 1));
        assert_eq!(
            period(PeriodKind::Quarterly, "2026年第四季度").1,
            day(2026, 10, 1)
        );
        for text in ["2026Q5", "2026Q0", "2026-07", "2026", "2026年第五季度"] {
            assert_eq!(
                Period::parse(PeriodKind::Quarterly, text),
                Err(PeriodError::Format(PeriodKind::Quarterly)),
                "{text}"
            );
        }
    }

    #[test]
    fn yearly_and_one_off_periods_are_a_year() {
        for kind in [PeriodKind::Yearly, PeriodKind::OneOff] {
            for text in ["2026", "2026年", "2026年度"] {
                assert_eq!(
                    period(kind, text),
                    ("2026".to_owned(), day(2026, 1, 1)),
                    "{text}"
                );
            }
            assert_eq!(
                Period::parse(kind, "2026-07"),
                Err(PeriodError::Format(kind))
            );
        }
    }

    #[test]
    fn years_outside_2000_to_2100_are_refused() {
        assert_eq!(
            Period::parse(PeriodKind::Monthly, "1999-12"),
            Err(PeriodError::YearOutOfRange)
        );
        assert_eq!(
            Period::parse(PeriodKind::Yearly, "2101"),
            Err(PeriodError::YearOutOfRange)
        );
        assert!(Period::parse(PeriodKind::Yearly, "2100").is_ok());
        assert!(Period::parse(PeriodKind::Monthly, "2000-01").is_ok());
    }

    #[test]
    fn stored_periods_read_back_unchanged() {
        for (kind, text) in [
            (PeriodKind::Monthly, "2026-07"),
            (PeriodKind::Quarterly, "2026-Q3"),
            (PeriodKind::Yearly, "2026"),
            (PeriodKind::OneOff, "2026"),
        ] {
            let period = Period::from_text(kind, text).unwrap();
            assert_eq!(period.text(), text);
            assert_eq!(period.kind(), kind);
            assert_eq!(period.year(), 2026);
        }
    }

    #[test]
    fn periods_have_chinese_labels() {
        let label = |kind, text| Period::parse(kind, text).unwrap().label_zh();
        assert_eq!(label(PeriodKind::Monthly, "2026-07"), "2026年7月");
        assert_eq!(label(PeriodKind::Quarterly, "2026Q3"), "2026年第3季度");
        assert_eq!(label(PeriodKind::Yearly, "2026"), "2026年度");
    }

    #[test]
    fn bank_accounts_keep_only_first_and_last_four_digits() {
        assert_eq!(
            mask_bank_account("6228480012345678").unwrap(),
            "6228********5678"
        );
        assert_eq!(
            mask_bank_account(" 6228 4800 1234 5678 ").unwrap(),
            "6228********5678"
        );
        assert_eq!(
            mask_bank_account("6228-4800-1234-5678-901").unwrap(),
            "6228***********8901"
        );
        assert_eq!(mask_bank_account("123456789012").unwrap(), "1234****9012");
    }

    #[test]
    fn bank_accounts_must_be_12_to_19_digits() {
        for text in [
            "",
            "12345678901",
            "12345678901234567890",
            "6228480012345X78",
            "6228.480012345678",
        ] {
            assert_eq!(mask_bank_account(text), Err(BankAccountError), "{text}");
        }
        assert_eq!(BankAccountError.message_zh(), "银行账号应为12至19位数字");
    }

    #[test]
    fn entry_kinds_come_from_the_roll_type_column() {
        assert_eq!(EntryKind::parse(""), Ok(EntryKind::Payment));
        assert_eq!(EntryKind::parse("发放"), Ok(EntryKind::Payment));
        assert_eq!(EntryKind::parse(" 冲正 "), Ok(EntryKind::Reversal));
        assert_eq!(EntryKind::parse("撤销"), Ok(EntryKind::Reversal));
        assert_eq!(EntryKind::parse("退款"), Err(EntryKindError));
        assert_eq!(EntryKindError.message_zh(), "类型应为「发放」或「冲正」");
        for kind in [EntryKind::Payment, EntryKind::Reversal] {
            assert_eq!(kind.as_str().parse::<EntryKind>(), Ok(kind));
        }
    }
}
