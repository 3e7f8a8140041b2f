//! The usage store: a batch recorded in one short transaction, figures read
//! by day, old visitor hashes pruned, and today's figures kept as
//! Prometheus gauges.

use std::{collections::BTreeMap, time::Duration};

use chrono::NaiveDate;
use huimin_kit::{clock::china_today, supervise::Task};
use sqlx::{Postgres, Transaction};

use super::{DayFigures, DayRange, Figure, KEEP_VISITORS_DAYS, UsageBatch};
use crate::{Identity, IdentityError};

/// Today's figures (China time), one gauge per figure: read from the
/// database, so every identity replica shows the county's total, not its
/// own share of the flushes.
pub const GAUGE: &str = "usage_today";

/// How often the gauges are read again (they also are after each flush) and
/// old hashes pruned. A minute keeps the gauges right across midnight and
/// across flushes other replicas took.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

/// What recording a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Added,
    /// The batch id was recorded before: a flush sent again after its
    /// answer was lost. Nothing was added.
    Duplicate,
}

impl Identity {
    /// Adds a batch: its id, its counters and its new visitors in one
    /// transaction, so a batch counts wholly once or not at all.
    #[tracing::instrument(skip_all, fields(batch = %batch.id, visitors = batch.visitor_count()))]
    pub async fn record_usage(&self, batch: &UsageBatch) -> Result<Recorded, IdentityError> {
        let mut tx = self.pool.begin().await?;
        if !claim(&mut tx, batch.id).await? {
            tracing::info!("usage batch recorded before; not counted again");
            return Ok(Recorded::Duplicate);
        }
        add_counters(&mut tx, batch).await?;
        add_visitors(&mut tx, batch).await?;
        tx.commit().await?;
        if let Err(error) = self.refresh_usage_gauges().await {
            tracing::warn!(%error, "cannot refresh the usage gauges");
        }
        Ok(Recorded::Added)
    }

    /// Every day of `range` with every figure, zero where nothing was counted.
    pub async fn usage_figures(&self, range: DayRange) -> Result<Vec<DayFigures>, IdentityError> {
        let rows: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
            "SELECT day, figure, count FROM usage_daily WHERE day BETWEEN $1 AND $2",
        )
        .bind(range.from)
        .bind(range.to)
        .fetch_all(&self.pool)
        .await?;
        // The table's CHECK admits only known names; a row it somehow holds
        // beyond them is no figure of ours and is left out.
        let counted: BTreeMap<(NaiveDate, Figure), i64> = rows
            .into_iter()
            .filter_map(|(day, name, count)| Some(((day, Figure::parse(&name)?), count)))
            .collect();
        Ok(range
            .days()
            .map(|day| DayFigures {
                day,
                figures: Figure::ALL
                    .into_iter()
                    .map(|figure| (figure, counted.get(&(day, figure)).copied().unwrap_or(0)))
                    .collect(),
            })
            .collect())
    }

    /// Sets the `usage_today` gauges from the database.
    pub async fn refresh_usage_gauges(&self) -> Result<(), IdentityError> {
        let today = china_today();
        let days = self
            .usage_figures(DayRange {
                from: today,
                to: today,
            })
            .await?;
        for (figure, count) in days.into_iter().flat_map(|day| day.figures) {
            // A gauge is an f64; counts stay far below 2^53.
            metrics::gauge!(GAUGE, "figure" => figure.as_str()).set(count as f64);
        }
        Ok(())
    }

    /// Deletes visitor hashes and batch ids too old for any batch to name
    /// their day again; the days' counts stay. Returns the hashes deleted.
    pub async fn prune_usage(&self) -> Result<u64, IdentityError> {
        let oldest_kept = china_today() - chrono::Duration::days(KEEP_VISITORS_DAYS);
        let hashes = sqlx::query("DELETE FROM usage_visitors WHERE day < $1")
            .bind(oldest_kept)
            .execute(&self.pool)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM usage_batches WHERE recorded_at < now() - make_interval(days => $1)",
        )
        .bind(i32::try_from(KEEP_VISITORS_DAYS).expect("a few days fit an i32"))
        .execute(&self.pool)
        .await?;
        Ok(hashes)
    }

    /// The supervised task that prunes old hashes and keeps the gauges
    /// fresh, until shutdown.
    pub fn usage_task(&self) -> Task {
        let identity = self.clone();
        Task::new("identity.usage", move |stop| {
            let identity = identity.clone();
            async move {
                loop {
                    match identity.prune_usage().await {
                        Ok(0) => {}
                        Ok(hashes) => tracing::info!(hashes, "pruned old visitor hashes"),
                        Err(error) => tracing::warn!(%error, "cannot prune visitor hashes"),
                    }
                    if let Err(error) = identity.refresh_usage_gauges().await {
                        tracing::warn!(%error, "cannot refresh the usage gauges");
                    }
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(MAINTAIN_EVERY) => {}
                    }
                }
            }
        })
    }
}

/// Records the batch id; false when it was there already. Two flushes of
/// one batch at once: the second waits on the first's row and then finds it.
async fn claim(tx: &mut Transaction<'_, Postgres>, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
    let inserted =
        sqlx::query("INSERT INTO usage_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(inserted == 1)
}

async fn add_counters(
    tx: &mut Transaction<'_, Postgres>,
    batch: &UsageBatch,
) -> Result<(), sqlx::Error> {
    if batch.counters.is_empty() {
        return Ok(());
    }
    let mut days = Vec::with_capacity(batch.counters.len());
    let mut figures = Vec::with_capacity(batch.counters.len());
    let mut counts = Vec::with_capacity(batch.counters.len());
    for (&(day, figure), &count) in &batch.counters {
        days.push(day);
        figures.push(figure.as_str());
        counts.push(count);
    }
    // (day, figure) is unique within a batch, as ON CONFLICT DO UPDATE needs.
    sqlx::query(
        "INSERT INTO usage_daily (day, figure, count)
         SELECT * FROM unnest($1::date[], $2::text[], $3::bigint[])
         ON CONFLICT (day, figure) DO UPDATE SET count = usage_daily.count + EXCLUDED.count",
    )
    .bind(days)
    .bind(figures)
    .bind(counts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the batch's visitor hashes and adds the ones new to their day to
/// that day's distinct visitors, in one statement: a hash another flush (or
/// another gateway replica) inserted first is skipped by ON CONFLICT and not
/// counted again.
async fn add_visitors(
    tx: &mut Transaction<'_, Postgres>,
    batch: &UsageBatch,
) -> Result<(), sqlx::Error> {
    let count = batch.visitor_count();
    if count == 0 {
        return Ok(());
    }
    let mut days = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for (&day, visitors) in &batch.visitors {
        for visitor in visitors {
            days.push(day);
            hashes.push(visitor.as_bytes().to_vec());
        }
    }
    sqlx::query(
        "WITH added AS (
             INSERT INTO usage_visitors (day, visitor)
             SELECT * FROM unnest($1::date[], $2::bytea[])
             ON CONFLICT DO NOTHING
             RETURNING day
         )
         INSERT INTO usage_daily (day, figure, count)
         SELECT day, 'distinct_visitors', count(*) FROM added GROUP BY day ORDER BY day
         ON CONFLICT (day, figure) DO UPDATE SET count = usage_daily.count + EXCLUDED.count",
    )
    .bind(days)
    .bind(hashes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
