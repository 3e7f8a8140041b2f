//! The hash chain behind the audit trail (全程留痕): each entry's MAC covers its contents and
//! the previous entry's MAC, so editing, deleting or reordering a stored entry is detectable.
//!
//! This module only computes and checks MACs; storing entries is [`crate::audit`]'s job.
//!
//! Entries are keyed: HMAC-SHA-256 under [`ChainKey`] (HUIMIN_AUDIT_HMAC_KEY), which lives
//! outside the database. An unkeyed SHA-256 chain stopped no one with database access: they
//! rewrote an entry and recomputed every later hash. Entries written before the key existed
//! keep their SHA-256 (`keyed = false`) and verify as such only up to a seq the operator
//! configures (HUIMIN_AUDIT_UNKEYED_UNTIL, 0 by default): a flag in the database alone would
//! let a rewriter mark the whole chain unkeyed.
//!
//! What a chain alone cannot show: entries removed from the *end* leave a shorter chain that
//! still verifies. The head (last seq and MAC) is therefore published out of the database now
//! and then ([`Head`], see `crate::head`) and [`verify`] checks the chain against it.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::{Digest, Sha256, digest::Update};

/// `prev_hash` of the first entry.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];
/// Sequence number of the first entry.
pub const FIRST_SEQ: i64 = 1;

/// Names the encoding, so a future change of format can never produce a hash equal to one
/// made by this version.
const DOMAIN: &[u8] = b"huimin.whistle.audit.v1";
/// The keyed encoding's name: a keyed MAC never equals an unkeyed hash of the same entry.
const KEYED_DOMAIN: &[u8] = b"huimin.whistle.audit.v2.hmac";
/// A published head's MAC is over this name, the seq and the entry MAC.
const HEAD_DOMAIN: &[u8] = b"huimin.whistle.audit-head.v1";

/// The key of the chain's MACs; never stored in the database, never printed.
#[derive(Clone)]
pub struct ChainKey([u8; 32]);

impl ChainKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length")
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

/// The last entry of the chain as published out of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl Head {
    /// The head's own MAC, so a published head cannot be made up without the key either.
    pub fn mac(&self, key: &ChainKey) -> [u8; 32] {
        let mut mac = key.mac();
        put_bytes(&mut mac, HEAD_DOMAIN);
        Update::update(&mut mac, &self.seq.to_be_bytes());
        Update::update(&mut mac, &self.hash);
        mac.finalize().into_bytes().into()
    }
}

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
    /// Whether `hash` is an HMAC under the chain key (every entry since the key came in).
    pub keyed: bool,
}

impl AuditEntry {
    /// The hash or MAC this entry's contents should have.
    pub fn expected_hash(&self, key: &ChainKey) -> [u8; 32] {
        let fields = Fields {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            report_id: self.report_id,
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        };
        if self.keyed {
            entry_mac(key, &fields)
        } else {
            entry_hash(
                fields.seq,
                fields.at,
                fields.actor,
                fields.action,
                fields.report_id,
                fields.detail,
                fields.prev_hash,
            )
        }
    }
}

/// An entry's contents, as hashed.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub report_id: Option<i64>,
    pub detail: &'a Value,
    pub prev_hash: &'a [u8; 32],
}

/// HMAC-SHA-256 under `key` over the same encoding as [`entry_hash`]: what every new
/// entry carries.
pub fn entry_mac(key: &ChainKey, fields: &Fields<'_>) -> [u8; 32] {
    let mut mac = key.mac();
    encode(&mut mac, KEYED_DOMAIN, fields);
    mac.finalize().into_bytes().into()
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
    let fields = Fields {
        seq,
        at,
        actor,
        action,
        report_id,
        detail,
        prev_hash,
    };
    encode(&mut hasher, DOMAIN, &fields);
    hasher.finalize().into()
}

fn encode(hasher: &mut impl Update, domain: &[u8], f: &Fields<'_>) {
    put_bytes(hasher, domain);
    hasher.update(&f.seq.to_be_bytes());
    hasher.update(&f.at.timestamp_micros().to_be_bytes());
    put_bytes(hasher, f.actor.as_bytes());
    put_bytes(hasher, f.action.as_bytes());
    match f.report_id {
        None => hasher.update(&[0]),
        Some(id) => {
            hasher.update(&[1]);
            hasher.update(&id.to_be_bytes());
        }
    }
    put_bytes(hasher, canonical_json(f.detail).as_bytes());
    hasher.update(f.prev_hash);
}

fn put_bytes(hasher: &mut impl Update, bytes: &[u8]) {
    let length = u64::try_from(bytes.len()).expect("a length always fits in u64");
    hasher.update(&length.to_be_bytes());
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
    /// An unkeyed entry past the configured last unkeyed seq: someone without the key
    /// rewrote the chain.
    #[error("entry not keyed with the chain key")]
    Unkeyed,
    /// The chain ends before the head published earlier: entries were removed from its end.
    #[error("the chain ends before the published head (entry {published_seq})")]
    ShorterThanPublished { published_seq: i64 },
    /// The entry at the published head's seq is not the one published.
    #[error("not the entry published as the head")]
    NotThePublishedHead,
    /// The published head's MAC is not made with the chain key.
    #[error("the published head is not signed with the chain key")]
    HeadNotSigned,
}

/// Checks a whole chain, in `seq` order from the first entry, and against the head last
/// published, if any; returns how many entries were checked, or the first entry that does
/// not check out.
///
/// The first entry must be seq [`FIRST_SEQ`] with [`GENESIS_PREV_HASH`], so deleting entries
/// from the start is caught like deleting them from the middle. An empty chain verifies only
/// when no head was ever published. Unkeyed entries are accepted up to `unkeyed_until`.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    key: &ChainKey,
    unkeyed_until: i64,
    published: Option<&Head>,
) -> Result<usize, ChainBreak> {
    let mut prev_hash = GENESIS_PREV_HASH;
    let mut checked = 0;
    let mut head_seen = false;
    for (expected_seq, entry) in (FIRST_SEQ..).zip(entries) {
        let broken = |reason| ChainBreak {
            seq: entry.seq,
            reason,
        };
        if !entry.keyed && entry.seq > unkeyed_until {
            return Err(broken(BreakReason::Unkeyed));
        }
        if entry.expected_hash(key) != entry.hash {
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
        if let Some(head) = published.filter(|h| h.seq == entry.seq) {
            if head.hash != entry.hash {
                return Err(broken(BreakReason::NotThePublishedHead));
            }
            head_seen = true;
        }
        prev_hash = entry.hash;
        checked += 1;
    }
    match published {
        Some(head) if !head_seen => Err(ChainBreak {
            seq: head.seq,
            reason: BreakReason::ShorterThanPublished {
                published_seq: head.seq,
            },
        }),
        _ => Ok(checked),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn key() -> ChainKey {
        ChainKey::new([7; 32])
    }

    /// Appends an entry the way the service does: next seq, linked to the last MAC.
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
        let mut entry = AuditEntry {
            seq,
            at,
            actor,
            action: action.to_owned(),
            report_id,
            detail,
            prev_hash,
            hash: [0; 32],
            keyed: true,
        };
        entry.hash = entry.expected_hash(&key());
        chain.push(entry);
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
        assert_eq!(verify(&chain_of_ten(), &key(), 0, None), Ok(10));
        assert_eq!(verify(&[], &key(), 0, None), Ok(0));
    }

    #[test]
    fn altered_detail_is_caught_at_that_entry() {
        let mut chain = chain_of_ten();
        chain[index_of(5)].detail["to"] = json!("closed");

        let error = verify(&chain, &key(), 0, None).expect_err("altered chain is broken");

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

        let error = verify(&chain, &key(), 0, None).expect_err("chain with a hole is broken");

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
            verify(&chain, &key(), 0, None),
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
        entry.hash = entry.expected_hash(&key());

        let error = verify(&chain, &key(), 0, None).expect_err("rehashed chain is broken");

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
            verify(&chain, &key(), 0, None),
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

        assert_eq!(verify(&chain, &key(), 0, None), Ok(10));
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

    /// Rewrites entry `from` and recomputes every later hash the way someone without the
    /// key can: unkeyed SHA-256, or HMAC under a key of their own.
    fn rewrite_from(chain: &mut [AuditEntry], from: i64, with: Option<&ChainKey>) {
        chain[index_of(from)].detail["to"] = json!("closed");
        let mut prev = chain[index_of(from) - 1].hash;
        for entry in &mut chain[index_of(from)..] {
            entry.prev_hash = prev;
            match with {
                Some(key) => entry.hash = entry.expected_hash(key),
                None => {
                    entry.keyed = false;
                    entry.hash = entry_hash(
                        entry.seq,
                        entry.at,
                        &entry.actor,
                        &entry.action,
                        entry.report_id,
                        &entry.detail,
                        &entry.prev_hash,
                    );
                }
            }
            prev = entry.hash;
        }
    }

    #[test]
    fn a_rewritten_chain_with_recomputed_hashes_is_caught_without_the_key() {
        let mut unkeyed = chain_of_ten();
        rewrite_from(&mut unkeyed, 5, None);
        let mut other_key = chain_of_ten();
        rewrite_from(&mut other_key, 5, Some(&ChainKey::new([8; 32])));

        assert_eq!(
            verify(&unkeyed, &key(), 0, None),
            Err(ChainBreak {
                seq: 5,
                reason: BreakReason::Unkeyed
            })
        );
        assert_eq!(
            verify(&other_key, &key(), 0, None),
            Err(ChainBreak {
                seq: 5,
                reason: BreakReason::Altered
            })
        );
    }

    #[test]
    fn unkeyed_entries_verify_only_up_to_the_configured_seq() {
        let mut chain = Vec::new();
        let mut prev = GENESIS_PREV_HASH;
        for seq in 1..=3 {
            let hash = entry_hash(
                seq,
                DateTime::UNIX_EPOCH,
                "system",
                "x",
                None,
                &json!({}),
                &prev,
            );
            chain.push(AuditEntry {
                seq,
                at: DateTime::UNIX_EPOCH,
                actor: "system".to_owned(),
                action: "x".to_owned(),
                report_id: None,
                detail: json!({}),
                prev_hash: prev,
                hash,
                keyed: false,
            });
            prev = hash;
        }
        append(&mut chain, "y", json!({}));

        assert_eq!(verify(&chain, &key(), 3, None), Ok(4));
        assert_eq!(
            verify(&chain, &key(), 2, None),
            Err(ChainBreak {
                seq: 3,
                reason: BreakReason::Unkeyed
            })
        );
    }

    #[test]
    fn a_removed_tail_or_an_emptied_chain_is_caught_by_the_published_head() {
        let mut chain = chain_of_ten();
        let head = Head {
            seq: 8,
            hash: chain[index_of(8)].hash,
        };
        assert_eq!(verify(&chain, &key(), 0, Some(&head)), Ok(10));
        chain.truncate(7);

        let shortened = verify(&chain, &key(), 0, Some(&head));
        let emptied = verify(&[], &key(), 0, Some(&head));

        let expected = Err(ChainBreak {
            seq: 8,
            reason: BreakReason::ShorterThanPublished { published_seq: 8 },
        });
        assert_eq!(shortened, expected);
        assert_eq!(emptied, expected);
    }

    #[test]
    fn a_chain_that_is_not_the_published_one_is_caught_at_the_head() {
        let chain = chain_of_ten();
        let head = Head {
            seq: 6,
            hash: [9; 32],
        };
        assert_eq!(
            verify(&chain, &key(), 0, Some(&head)),
            Err(ChainBreak {
                seq: 6,
                reason: BreakReason::NotThePublishedHead
            })
        );
    }

    #[test]
    fn a_heads_mac_depends_on_the_key_and_its_contents() {
        let head = Head {
            seq: 3,
            hash: [1; 32],
        };
        let later = Head { seq: 4, ..head };
        assert_ne!(head.mac(&key()), head.mac(&ChainKey::new([8; 32])));
        assert_ne!(head.mac(&key()), later.mac(&key()));
    }
}
