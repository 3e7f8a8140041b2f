//! Amounts as citizens read them: yuan with two decimals, from integer fen,
//! exactly (no floating point anywhere between the roll and the page).

/// `17000` → `"170.00"`, `-5` → `"-0.05"`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::yuan;

    #[test]
    fn fen_become_yuan_exactly() {
        assert_eq!(yuan(17000), "170.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(-17050), "-170.50");
        assert_eq!(yuan(i64::MIN), "-92233720368547758.08");
    }
}
