//! The hash chain behind the audit trail (全程留痕): each entry's hash covers its contents and
//! the previous entry's hash, so editing, deleting or reordering a stored entry is detectable.
//!
//! This module only computes and checks hashes; storing entries is [`crate::audit`]'s job.
//!
//! What the chain cannot show: entries removed from the *end* leave a shorter chain that still
//! verifies. Publishing or exporting the latest hash now and then (and comparing it later)
//! closes that gap.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];
/// Sequence number of the first entry.
pub const FIRST_SEQ: i64 = 1;

/// Names the encoding, so a future change of format can never produce a hash equal to one
/// made by this version.
const DOMAIN: &[u8] = b"huimin.whistle.audit.v1";

/// One entry of the audit trail as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    /// Hashed at microsecond precision, which is what PostgreSQL `timestamptz` keeps.
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub report_id: Option<i64>,
    pub detail: Value,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// The hash this entry's contents should have.
    pub fn expected_hash(&self) -> [u8; 32] {
        entry_hash(
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            self.report_id,
            &self.detail,
            &self.prev_hash,
        )
    }
}

/// SHA-256 over an unambiguous encoding of the entry.
///
/// Every variable-length field is prefixed with its length, so moving bytes from one field to
/// the next changes the hash. `at` is hashed as whole microseconds since the Unix epoch: a
/// timestamp read back from PostgreSQL hashes the same as the one written, even if the written
/// one carried nanoseconds. `detail` is hashed as [`canonical_json`], so a JSON store that
/// reorders object keys (PostgreSQL `jsonb` does) does not break the chain.
pub fn entry_hash(
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    report_id: Option<i64>,
    detail: &Value,
    prev_hash: &[u8; 32],
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    put_bytes(&mut hasher, DOMAIN);
    hasher.update(seq.to_be_bytes());
    hasher.update(at.timestamp_micros().to_be_bytes());
    put_bytes(&mut hasher, actor.as_bytes());
    put_bytes(&mut hasher, action.as_bytes());
    match report_id {
        None => hasher.update([0]),
        Some(id) => {
            hasher.update([1]);
            hasher.update(id.to_be_bytes());
        }
    }
    put_bytes(&mut hasher, canonical_json(detail).as_bytes());
    hasher.update(prev_hash);
    hasher.finalize().into()
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    let length = u64::try_from(bytes.len()).expect("a length always fits in u64");
    hasher.update(length.to_be_bytes());
    hasher.update(bytes);
}

/// JSON with object keys sorted (by their UTF-8 bytes) at every level and no whitespace.
///
/// Strings and numbers are written as serde_json writes them. We sort explicitly rather than
/// rely on `serde_json::Map` being a `BTreeMap`: any crate in the build that enables
/// serde_json's `preserve_order` feature would silently turn it into an insertion-ordered map
/// and change every hash.
///
/// Keep `detail` to strings, integers and booleans: PostgreSQL `jsonb` stores numbers as
/// `numeric`, and an integer beyond 64 bits or an unusual float spelling may not read back
/// as the same serde_json number.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&value.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).expect("a string always serialises to JSON"));
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {reason}")]
pub struct ChainBreak {
    /// The first entry that does not check out.
    pub seq: i64,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BreakReason {
    /// The stored hash is not the hash of the stored contents.
    #[error("contents altered")]
    Altered,
    /// The entry's `prev_hash` is not the previous entry's hash.
    #[error("not linked to the previous entry")]
    Unlinked,
    /// One or more entries before this one are missing.
    #[error("entry {expected_seq} is missing")]
    Gap { expected_seq: i64 },
}

/// Checks a whole chain, in `seq` order from the first entry; returns how many entries were
/// checked, or the first entry that does not check out.
///
/// The first entry must be seq [`FIRST_SEQ`] with [`GENESIS_PREV_HASH`], so deleting entries
/// from the start is caught like deleting them from the middle. An empty chain verifies.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> Result<usize, ChainBreak> {
    let mut prev_hash = GENESIS_PREV_HASH;
    let mut checked = 0;
    for (expected_seq, entry) in (FIRST_SEQ..).zip(entries) {
        let broken = |reason| ChainBreak {
            seq: entry.seq,
            reason,
        };
        if entry.expected_hash() != entry.hash {
            return Err(broken(BreakReason::Altered));
        }
        if entry.seq > expected_seq {
            return Err(broken(BreakReason::Gap { expected_seq }));
        }
        // A repeated or out-of-order seq (entry.seq < expected_seq) can only come with a
        // prev_hash that does not match, or with a hash collision.
        if entry.seq != expected_seq || entry.prev_hash != prev_hash {
            return Err(broken(BreakReason::Unlinked));
        }
        prev_hash = entry.hash;
        checked += 1;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    /// Appends an entry the way the service does: next seq, linked to the last hash.
    fn append(chain: &mut Vec<AuditEntry>, action: &str, detail: Value) {
        let (seq, prev_hash) = chain.last().map_or((FIRST_SEQ, GENESIS_PREV_HASH), |last| {
            (last.seq + 1, last.hash)
        });
        let at = Utc
            .with_ymd_and_hms(2026, 7, 1, 9, 0, 0)
            .single()
            .expect("valid test date")
            + chrono::Duration::microseconds(seq * 1_000_123);
        let report_id = (seq % 3 != 0).then_some(1000 + seq);
        let actor = format!("staff:clerk{}", seq % 2);
        let hash = entry_hash(seq, at, &actor, action, report_id, &detail, &prev_hash);
        chain.push(AuditEntry {
            seq,
            at,
            actor,
            action: action.to_owned(),
            report_id,
            detail,
            prev_hash,
            hash,
        });
    }

    fn chain_of_ten() -> Vec<AuditEntry> {
        let mut chain = Vec::new();
        for i in 1..=10 {
            append(
                &mut chain,
                "report.status_changed",
                json!({"to": "verifying", "from": "received", "note": format!("第{i}次"), "n": i}),
            );
        }
        chain
    }

    fn index_of(seq: i64) -> usize {
        usize::try_from(seq - FIRST_SEQ).expect("test seqs are positive")
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain_of_ten()), Ok(10));
        assert_eq!(verify(&[]), Ok(0));
    }

    #[test]
    fn altered_detail_is_caught_at_that_entry() {
        let mut chain = chain_of_ten();
        chain[index_of(5)].detail["to"] = json!("closed");

        let error = verify(&chain).expect_err("altered chain is broken");

        assert_eq!(
            error,
            ChainBreak {
                seq: 5,
                reason: BreakReason::Altered
            }
        );
        assert_eq!(
            error.to_string(),
            "audit chain broken at entry 5: contents altered"
        );
    }

    #[test]
    fn removed_entry_is_caught_as_a_gap_at_the_next_one() {
        let mut chain = chain_of_ten();
        chain.remove(index_of(5));

        let error = verify(&chain).expect_err("chain with a hole is broken");

        assert_eq!(
            error,
            ChainBreak {
                seq: 6,
                reason: BreakReason::Gap { expected_seq: 5 }
            }
        );
        assert_eq!(
            error.to_string(),
            "audit chain broken at entry 6: entry 5 is missing"
        );
    }

    #[test]
    fn removed_first_entry_is_caught() {
        let mut chain = chain_of_ten();
        chain.remove(0);
        assert_eq!(
            verify(&chain),
            Err(ChainBreak {
                seq: 2,
                reason: BreakReason::Gap { expected_seq: 1 }
            })
        );
    }

    #[test]
    fn rehashed_altered_entry_is_caught_at_the_next_one() {
        let mut chain = chain_of_ten();
        let entry = &mut chain[index_of(5)];
        entry.detail["to"] = json!("closed");
        entry.hash = entry.expected_hash();

        let error = verify(&chain).expect_err("rehashed chain is broken");

        assert_eq!(
            error,
            ChainBreak {
                seq: 6,
                reason: BreakReason::Unlinked
            }
        );
        assert_eq!(
            error.to_string(),
            "audit chain broken at entry 6: not linked to the previous entry"
        );
    }

    #[test]
    fn swapped_entries_are_caught() {
        let mut chain = chain_of_ten();
        chain.swap(index_of(4), index_of(5));
        assert_eq!(
            verify(&chain),
            Err(ChainBreak {
                seq: 5,
                reason: BreakReason::Gap { expected_seq: 4 }
            })
        );
    }

    #[test]
    fn reordered_detail_keys_still_verify() {
        let mut chain = chain_of_ten();
        let reordered: Value = serde_json::from_str(
            r#"{"n": 5, "note": "第5次", "to": "verifying", "from": "received"}"#,
        )
        .expect("valid json");
        assert_eq!(reordered, chain[index_of(5)].detail);
        chain[index_of(5)].detail = reordered;

        assert_eq!(verify(&chain), Ok(10));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = json!({"b": [{"z": 1, "a": null}], "a": {"y": "引号\"", "x": 1.5}, "c": true});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"x":1.5,"y":"引号\""},"b":[{"a":null,"z":1}],"c":true}"#
        );
    }

    #[test]
    fn timestamps_are_hashed_at_microsecond_precision() {
        let at = Utc
            .with_ymd_and_hms(2026, 7, 1, 9, 0, 0)
            .single()
            .expect("valid test date");
        let with_nanos = at + chrono::Duration::nanoseconds(1_000_999);
        let with_micros = at + chrono::Duration::microseconds(1_000);
        let hash = |at| entry_hash(1, at, "system", "x", None, &json!({}), &GENESIS_PREV_HASH);

        assert_eq!(hash(with_nanos), hash(with_micros));
        assert_ne!(hash(with_micros), hash(at));
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_hash() {
        let hash = |actor, action| {
            entry_hash(
                1,
                DateTime::UNIX_EPOCH,
                actor,
                action,
                None,
                &json!({}),
                &GENESIS_PREV_HASH,
            )
        };
        assert_ne!(hash("staff:ab", "c"), hash("staff:a", "bc"));
        let with_report = |report_id| {
            entry_hash(
                1,
                DateTime::UNIX_EPOCH,
                "a",
                "b",
                report_id,
                &json!({}),
                &GENESIS_PREV_HASH,
            )
        };
        assert_ne!(with_report(None), with_report(Some(0)));
    }
}
