//! Following a report up and adding information, both by receipt code, with
//! wrong codes throttled per client (keyed hash, counted by the hour).

use chrono::{DateTime, NaiveDate, Utc};

use super::{FollowUp, MAX_TEXT, PhotoHome, Trail, clean_photos_blocking, stamp, today};
use crate::{
    Whistle,
    audit::Actor,
    domain::{AuditAction, Status},
    error::WhistleError,
    receipt,
};

const MAX_FAILURES_PER_HOUR: i64 = 10;

impl Whistle {
    /// Finds the report of a receipt code, throttling wrong guesses per client.
    async fn by_receipt(&self, code: &str, client_key: &str) -> Result<(i64, bool), WhistleError> {
        if client_key.trim().is_empty() {
            return Err(WhistleError::invalid("client_key", "缺少调用方标识"));
        }
        let client = self.receipt_clients.client_hash(client_key);
        // This hour's and the last: the window is between one and two hours,
        // so a guesser gains nothing by waiting for the hour to turn.
        let failures: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(failures), 0) FROM receipt_failures
             WHERE client_hash = $1 AND hour >= date_trunc('hour', now()) - interval '1 hour'",
        )
        .bind(&client)
        .fetch_one(&self.pool)
        .await?;
        if failures >= MAX_FAILURES_PER_HOUR {
            return Err(WhistleError::Throttled);
        }
        let found: Option<(i64, bool)> = match receipt::hash(code) {
            Some(hash) => {
                sqlx::query_as("SELECT id, anonymous FROM reports WHERE receipt_hash = $1")
                    .bind(hash.as_slice())
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => None,
        };
        match found {
            Some(found) => Ok(found),
            None => {
                // Failures older than the window only take space.
                sqlx::query(
                    "DELETE FROM receipt_failures WHERE hour < date_trunc('hour', now()) - interval '1 hour'",
                )
                .execute(&self.pool)
                .await?;
                sqlx::query(
                    "INSERT INTO receipt_failures (client_hash, hour, failures)
                     VALUES ($1, date_trunc('hour', now()), 1)
                     ON CONFLICT (client_hash, hour) DO UPDATE SET failures = receipt_failures.failures + 1",
                )
                .bind(&client)
                .execute(&self.pool)
                .await?;
                Err(WhistleError::not_found("回执码不正确，请核对后重试"))
            }
        }
    }

    /// The status and replies of the report with this receipt code.
    pub async fn follow_up(&self, code: &str, client_key: &str) -> Result<FollowUp, WhistleError> {
        let (id, anonymous) = self.by_receipt(code, client_key).await?;
        let mut tx = self.pool.begin().await?;
        let (number, status, received_on): (String, String, NaiveDate) =
            sqlx::query_as("SELECT number, status, received_on FROM reports WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let replies: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT text, at FROM report_replies WHERE report_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let status: Status = status
            .parse()
            .map_err(|e| WhistleError::internal(anyhow::Error::new(e).context("reports.status")))?;
        let day = today();
        let trail = Trail {
            hidden: anonymous,
            day,
            at: stamp(anonymous, day),
            key: &self.audit.key,
        };
        trail
            .record(
                &mut tx,
                &Actor::Reporter,
                AuditAction::ReportFollowedUp,
                id,
                serde_json::json!({}),
            )
            .await?;
        tx.commit().await?;
        Ok(FollowUp {
            number,
            status,
            received_on,
            replies,
        })
    }

    /// Adds text and photos to the report with this receipt code.
    pub async fn add_information(
        &self,
        code: &str,
        client_key: &str,
        text: &str,
        photos: Vec<Vec<u8>>,
    ) -> Result<(), WhistleError> {
        let text = text.trim().to_owned();
        if text.is_empty() && photos.is_empty() {
            return Err(WhistleError::invalid("text", "请填写补充内容或上传照片"));
        }
        if text.chars().count() > MAX_TEXT {
            return Err(WhistleError::invalid("text", "补充内容不超过5000字"));
        }
        let (id, anonymous) = self.by_receipt(code, client_key).await?;
        let existing: i64 =
            sqlx::query_scalar("SELECT count(*) FROM report_photos WHERE report_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        let already = usize::try_from(existing).unwrap_or(usize::MAX);
        let cleaned = clean_photos_blocking(photos, already).await?;
        let day = today();
        let at = stamp(anonymous, day);
        let mut tx = self.pool.begin().await?;
        if !text.is_empty() {
            sqlx::query(
                "INSERT INTO report_additions (report_id, text, added_on) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(&text)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        }
        let written = self
            .store_photos(&mut tx, id, &cleaned, day, PhotoHome::of(anonymous))
            .await?;
        // Files are written before the commit: remove them if it never comes.
        let finished = async {
            let detail = serde_json::json!({"text": !text.is_empty(), "photos": cleaned.len()});
            let trail = Trail {
                hidden: anonymous,
                day,
                at,
                key: &self.audit.key,
            };
            trail
                .record(
                    &mut tx,
                    &Actor::Reporter,
                    AuditAction::ReportInformationAdded,
                    id,
                    detail,
                )
                .await?;
            tx.commit().await?;
            Ok::<(), WhistleError>(())
        }
        .await;
        self.keep_if_committed(&written, finished).await
    }
}
