//! Day-end sealing: an anonymous report's audit entries and events are held
//! until its day is over, then join the chain and the outbox in random
//! order, each stamped with the day's midnight, so neither their times nor
//! their order tell when in the day a report came.

use crate::{OUTBOX, Whistle, audit, error::WhistleError};

#[derive(sqlx::FromRow)]
struct PendingEntry {
    id: i64,
    day: chrono::NaiveDate,
    actor: String,
    action: String,
    report_id: Option<i64>,
    detail: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct PendingEvent {
    id: i64,
    day: chrono::NaiveDate,
    kind: String,
    payload: serde_json::Value,
}

/// Writes the sealed anonymous reports' rows again, so each row's
/// transaction id (`xmin`, which any reader of the table can select) is
/// the seal's rather than one that sits between the ids of timed rows.
/// Only rows of finished days: a photo or addition of today waits for
/// today's seal. The dead versions stay until vacuum; see docs/security.md.
async fn rewrite_rows(
    tx: &mut sqlx::PgConnection,
    reports: &[i64],
    today: chrono::NaiveDate,
) -> Result<(), WhistleError> {
    sqlx::query("UPDATE reports SET anonymous = anonymous WHERE id = ANY($1) AND anonymous AND received_on < $2")
        .bind(reports)
        .bind(today)
        .execute(&mut *tx)
        .await?;
    for table in ["report_photos", "report_additions"] {
        sqlx::query(&format!(
            "UPDATE {table} t SET added_on = t.added_on FROM reports r
             WHERE r.id = t.report_id AND r.anonymous AND t.report_id = ANY($1) AND t.added_on < $2"
        ))
        .bind(reports)
        .bind(today)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Whistle {
    /// Moves anonymous reports' held entries and events of days that are
    /// over into the audit chain and the outbox, in random order, each with
    /// its day's midnight. Returns how many entries were sealed.
    pub async fn seal_day_ends(&self) -> Result<usize, WhistleError> {
        let today = huimin_kit::clock::china_today();
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let entries: Vec<PendingEntry> = sqlx::query_as(
            "SELECT id, day, actor, action, report_id, detail FROM pending_audit WHERE day < $1 ORDER BY random()",
        )
        .bind(today)
        .fetch_all(&mut *tx)
        .await?;
        for e in &entries {
            audit::append(
                &mut tx,
                &self.audit.key,
                huimin_kit::clock::china_midnight(e.day),
                &e.actor,
                &e.action,
                e.report_id,
                e.detail.clone(),
            )
            .await?;
        }
        let events: Vec<PendingEvent> = sqlx::query_as(
            "SELECT id, day, kind, payload FROM pending_events WHERE day < $1 ORDER BY random()",
        )
        .bind(today)
        .fetch_all(&mut *tx)
        .await?;
        for e in &events {
            OUTBOX
                .append(
                    &mut tx,
                    &e.kind,
                    &e.payload,
                    huimin_kit::clock::china_midnight(e.day),
                )
                .await?;
        }
        let reports: Vec<i64> = entries.iter().filter_map(|e| e.report_id).collect();
        rewrite_rows(&mut tx, &reports, today).await?;
        let entry_ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let event_ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        sqlx::query("DELETE FROM pending_audit WHERE id = ANY($1)")
            .bind(&entry_ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pending_events WHERE id = ANY($1)")
            .bind(&event_ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                events = events.len(),
                "anonymous reports' day sealed"
            );
        }
        Ok(entries.len())
    }

    /// Seals finished days now and then, until `stop` is cancelled.
    pub async fn seal_until(&self, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(error) = self.seal_day_ends().await {
                tracing::warn!(%error, "sealing held audit entries failed; will retry");
            }
            if let Err(error) = self.move_sealed_photos().await {
                tracing::warn!(%error, "moving sealed photos to the object store failed; will retry");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.seal_every) => {}
            }
        }
    }
}
