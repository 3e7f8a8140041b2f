//! Publishing the audit chain's head (its last seq and MAC) out of the database, so a
//! removed tail or an emptied table is caught by `audit verify` (see [`crate::chain`]).
//!
//! The head goes to a file under HUIMIN_AUDIT_HEAD_DIR (a volume no database user can
//! write; in Kubernetes ship it on to an object store with retention) and to the log, which
//! the log collector keeps elsewhere again. The file carries the head's own MAC, so it
//! cannot be made up without the key. A publisher that finds the chain shorter than, or
//! different at, the head it published before refuses to publish and logs an error: moving
//! the head back would launder the removal it should reveal.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::{
    Whistle, audit,
    chain::{ChainKey, Head},
    config::AuditConfig,
    error::WhistleError,
};

const FILE: &str = "audit-head.json";

/// The head as the file holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    seq: i64,
    hash: String,
    mac: String,
    published_at: chrono::DateTime<Utc>,
}

/// What the file says, and whether its MAC is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedHead {
    pub head: Head,
    pub signed: bool,
}

/// The head last published under `dir`; `None` when none was yet.
pub fn read(dir: &Path, key: &ChainKey) -> anyhow::Result<Option<PublishedHead>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!("reading {}", path.display())));
        }
    };
    let published: Published = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a published audit head: {e}", path.display()))?;
    let hash = decode32(&published.hash)
        .ok_or_else(|| anyhow::anyhow!("{}: hash is not 32 bytes of hex", path.display()))?;
    let head = Head {
        seq: published.seq,
        hash,
    };
    let signed = decode32(&published.mac).is_some_and(|mac| mac == head.mac(key));
    Ok(Some(PublishedHead { head, signed }))
}

/// Replaces the published head under `dir`: written aside, then renamed, so a reader never
/// sees half a file.
pub fn write(dir: &Path, key: &ChainKey, head: &Head) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::anyhow!("HUIMIN_AUDIT_HEAD_DIR {} is not usable: {e}", dir.display())
    })?;
    let published = Published {
        seq: head.seq,
        hash: hex::encode(head.hash),
        mac: hex::encode(head.mac(key)),
        published_at: Utc::now(),
    };
    let aside: PathBuf = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&aside, serde_json::to_vec_pretty(&published)?)?;
    std::fs::rename(&aside, dir.join(FILE))?;
    Ok(())
}

fn decode32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

impl Whistle {
    /// Publishes the chain's current head, unless the chain no longer holds the head
    /// published before. Returns what was published.
    pub async fn publish_head(&self) -> Result<Option<Head>, WhistleError> {
        let Some(current) = audit::head(&self.pool).await? else {
            return Ok(None);
        };
        let previous =
            read(&self.audit.head_dir, &self.audit.key).map_err(WhistleError::internal)?;
        if let Some(previous) = previous.filter(|p| p.signed) {
            let held: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
                    .bind(previous.head.seq)
                    .fetch_optional(&self.pool)
                    .await?;
            if held.as_deref() != Some(previous.head.hash.as_slice()) {
                tracing::error!(
                    published_seq = previous.head.seq,
                    "audit chain no longer holds its published head; not publishing"
                );
                return Err(WhistleError::internal(anyhow::anyhow!(
                    "audit chain no longer holds its published head"
                )));
            }
            if previous.head == current {
                return Ok(Some(current));
            }
        }
        write(&self.audit.head_dir, &self.audit.key, &current).map_err(WhistleError::internal)?;
        tracing::info!(
            seq = current.seq,
            hash = %hex::encode(current.hash),
            "audit chain head published"
        );
        Ok(Some(current))
    }

    /// Publishes the head now and then, until `stop` is cancelled.
    pub async fn publish_heads_until(&self, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(error) = self.publish_head().await {
                tracing::warn!(%error, "publishing the audit chain head failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.audit.head_every) => {}
            }
        }
    }

    /// Recomputes the chain and checks it against the head last published.
    pub async fn verify_audit(
        &self,
    ) -> Result<Result<usize, crate::chain::ChainBreak>, WhistleError> {
        verify_published(&self.pool, &self.audit).await
    }
}

/// [`audit::verify`] against the head published under `head_dir`, as both the VerifyAudit
/// call and `huimin audit verify` run it.
pub async fn verify_published(
    pool: &sqlx::PgPool,
    audit: &AuditConfig,
) -> Result<Result<usize, crate::chain::ChainBreak>, WhistleError> {
    let published = read(&audit.head_dir, &audit.key).map_err(WhistleError::internal)?;
    if let Some(published) = published.filter(|p| !p.signed) {
        return Ok(Err(crate::chain::ChainBreak {
            seq: published.head.seq,
            reason: crate::chain::BreakReason::HeadNotSigned,
        }));
    }
    let head = published.map(|p| p.head);
    audit::verify(pool, &audit.key, audit.unkeyed_until, head.as_ref()).await
}
