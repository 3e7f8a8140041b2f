//! Writing a checked roll's payments.

use huimin_kit::pii::mask_name;

use crate::LedgerError;

use super::Checked;

/// Streams the roll's payments into `payments` by COPY (CSV), in `order`,
/// with ids from `first_id` on.
pub(super) async fn copy_payments(
    tx: &mut sqlx::PgConnection,
    roll_id: i64,
    first_id: i64,
    checked: &[Checked],
    order: &[usize],
    reverses: &[Option<i64>],
) -> Result<(), LedgerError> {
    use std::io::Write as _;
    let mut copy = tx
        .copy_in_raw(
            "COPY payments (id, roll_id, line, person_key, name_masked, id_masked, household_code, village_code,
                            program_code, period, period_start, amount_fen, kind, reverses, bank_masked, bank_hash)
             FROM STDIN (FORMAT csv)",
        )
        .await?;
    let mut id = first_id;
    for chunk in order.chunks(10_000) {
        let mut out = Vec::with_capacity(chunk.len() * 200);
        for &n in chunk {
            let c = &checked[n];
            let reversed = reverses[n].map(|r| r.to_string()).unwrap_or_default();
            write!(
                out,
                "{id},{roll_id},{},\\x{},",
                c.entry.line,
                c.person_key.to_hex()
            )
            .map_err(|e| LedgerError::internal(e.into()))?;
            for text in [
                mask_name(&c.entry.name).as_str(),
                &c.id_masked,
                &c.household_code,
                &c.entry.village_code,
                &c.entry.program,
                c.entry.period.text(),
            ] {
                push_csv_text(&mut out, text);
                out.push(b',');
            }
            write!(
                out,
                "{},{},{},{reversed},",
                c.entry.period.start(),
                c.signed_amount(),
                c.entry.kind.as_str(),
            )
            .map_err(|e| LedgerError::internal(e.into()))?;
            push_csv_text(&mut out, &c.entry.bank_masked);
            out.push(b',');
            if let Some(hash) = &c.entry.bank_hash {
                write!(out, "\\x{}", hex::encode(hash))
                    .map_err(|e| LedgerError::internal(e.into()))?;
            }
            out.push(b'\n');
            id += 1;
        }
        copy.send(out).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// A CSV field: quoted (quotes doubled) when it holds a delimiter, quote or
/// line break, as is otherwise. An empty field is written quoted, so COPY
/// reads it as an empty string rather than NULL.
fn push_csv_text(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() || text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::push_csv_text;

    fn field(text: &str) -> String {
        let mut out = Vec::new();
        push_csv_text(&mut out, text);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn text_is_quoted_only_when_csv_needs_it() {
        assert_eq!(field("庞*英"), "庞*英");
        assert_eq!(field(""), "\"\"", "empty stays a string, not NULL");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }
}
