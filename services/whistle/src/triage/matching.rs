//! How keywords are found in a report's text: normalised substring search,
//! a phrase inside a longer matched phrase counted once.

/// The items whose phrase occurs in `text`, leaving out a phrase that only matched as part of
/// a longer matched phrase of the same list (打击报复 should not also count as 报复).
pub(super) fn matching<'a, T>(
    text: &str,
    items: impl Iterator<Item = (&'a str, &'a T)>,
) -> Vec<&'a T> {
    let found: Vec<(String, &T)> = items
        .map(|(phrase, item)| (normalise(phrase), item))
        .filter(|(phrase, _)| !phrase.is_empty() && text.contains(phrase.as_str()))
        .collect();
    found
        .iter()
        .filter(|(phrase, _)| {
            !found
                .iter()
                .any(|(other, _)| other.len() > phrase.len() && other.contains(phrase.as_str()))
        })
        .map(|(_, item)| *item)
        .collect()
}

/// Text as keywords are matched against it: whitespace removed, full-width ASCII folded to
/// half-width (phone keyboards mix them), ASCII lower-cased.
pub(super) fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
