//! Money, periods and reply length, as a citizen reads them in WeChat.

/// WeChat refuses a passive text reply over 2048 bytes (WECHAT.md).
pub const MAX_REPLY_BYTES: usize = 2048;

/// Integer fen as yuan, exactly: 17000 → "170元", 17050 → "170.50元".
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let (whole, cents) = (abs / 100, abs % 100);
    if cents == 0 {
        format!("{sign}{whole}元")
    } else {
        format!("{sign}{whole}.{cents:02}元")
    }
}

/// A ledger period as Chinese: "2026-07" → "2026年7月", "2026-Q3" → "2026年第3季度",
/// "2026" → "2026年"; anything else unchanged.
pub fn period(period: &str) -> String {
    let mut parts = period.splitn(2, '-');
    let year = parts.next().unwrap_or_default();
    match parts.next() {
        None if is_year(year) => format!("{year}年"),
        Some(rest) if is_year(year) => {
            if let Some(q) = rest.strip_prefix('Q') {
                format!("{year}年第{q}季度")
            } else if let Ok(month) = rest.parse::<u32>() {
                format!("{year}年{month}月")
            } else {
                period.to_owned()
            }
        }
        _ => period.to_owned(),
    }
}

fn is_year(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The month of a ledger period ("2026-07" → 7), if it is monthly.
pub fn period_month(period: &str) -> Option<u32> {
    let (year, month) = period.split_once('-')?;
    if !is_year(year) {
        return None;
    }
    month.parse().ok().filter(|m| (1..=12).contains(m))
}

/// Joins `lines` under `head` while the reply stays within WeChat's limit;
/// when some are left out, the reply ends with `more` (a link to the H5 page).
pub fn bounded(head: &str, lines: &[String], more: &str) -> String {
    let mut out = head.to_owned();
    // Room kept for "……另有N条" and the pointer to the page, whether or not
    // they are needed.
    let budget = MAX_REPLY_BYTES.saturating_sub(more.len() + 40);
    for (shown, line) in lines.iter().enumerate() {
        if out.len() + 1 + line.len() > budget {
            let left = lines.len() - shown;
            out.push_str(&format!("\n……另有{left}条"));
            out.push('\n');
            out.push_str(more);
            return out;
        }
        out.push('\n');
        out.push_str(line);
    }
    out
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_is_exact() {
        assert_eq!(yuan(17000), "170元");
        assert_eq!(yuan(17050), "170.50元");
        assert_eq!(yuan(5), "0.05元");
        assert_eq!(yuan(0), "0元");
        assert_eq!(yuan(-17000), "-170元");
        assert_eq!(yuan(1_000_000_000_001), "10000000000.01元");
    }

    #[test]
    fn periods_read_as_chinese() {
        assert_eq!(period("2026-07"), "2026年7月");
        assert_eq!(period("2026-Q3"), "2026年第3季度");
        assert_eq!(period("2026"), "2026年");
        assert_eq!(period("soon"), "soon");
        assert_eq!(period_month("2026-07"), Some(7));
        assert_eq!(period_month("2026-Q3"), None);
        assert_eq!(period_month("2026"), None);
    }

    #[test]
    fn long_lists_are_cut_within_the_limit_and_point_to_the_page() {
        let lines: Vec<String> = (0..500).map(|i| format!("{i}. 张*三 170元")).collect();
        let text = bounded("公示", &lines, "详见 http://x/h5/disclosure");
        assert!(text.len() <= MAX_REPLY_BYTES, "{}", text.len());
        assert!(text.ends_with("详见 http://x/h5/disclosure"));
        assert!(text.contains("另有"));
        let short = bounded("公示", &lines[..2], "详见");
        assert_eq!(short, "公示\n0. 张*三 170元\n1. 张*三 170元");
    }

    #[test]
    fn cut_keeps_characters_whole() {
        assert_eq!(cut("低保金", 4), "低");
        assert_eq!(cut("abc", 10), "abc");
    }
}
