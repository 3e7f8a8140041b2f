//! The reporter's side: submitting a report (triaged on arrival, see
//! [`submit`]), following it up and adding information with the receipt code.
//!
//! Anonymity: an anonymous report's rows hold no openid and no time of day
//! (dates only, and midnight where a timestamp column needs a value); the
//! audit trail and events of its submission carry the same midnight. The
//! gateway's openid for an anonymous report is dropped here, unlogged.

mod attachments;

pub(crate) use attachments::PhotoHome;
mod follow;
mod peers;
mod submit;

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    OUTBOX,
    audit::{self, Actor},
    chain::ChainKey,
    domain::{AuditAction, EventKind, Source, Status},
    error::WhistleError,
    photos::{self, CleanPhoto},
    triage::Subject,
};

/// A new report as the gateway (or a service) hands it over.
#[derive(Debug)]
pub struct NewReport {
    pub source: Source,
    pub text: String,
    pub category: Option<String>,
    pub subject: Subject,
    pub subject_official_town: Option<String>,
    pub photos: Vec<Vec<u8>>,
    /// `None` for anonymous reports.
    pub reporter_openid: Option<String>,
}

/// What the reporter is told once.
#[derive(Debug)]
pub struct Receipt {
    pub code: String,
    pub number: String,
    pub report_id: i64,
}

/// A report's state as its reporter sees it.
#[derive(Debug)]
pub struct FollowUp {
    pub number: String,
    pub status: Status,
    pub received_on: NaiveDate,
    pub replies: Vec<(String, DateTime<Utc>)>,
}

const MAX_TEXT: usize = 5000;

/// A report's day is counted in China time.
pub fn today() -> NaiveDate {
    huimin_kit::clock::china_today()
}

/// Midnight (China time) of `day`, as the only timestamp an anonymous report gets.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    huimin_kit::clock::china_midnight(day)
}

/// Cleans every photo (EXIF and other metadata dropped) before anything is stored.
pub fn clean_photos(uploads: &[Vec<u8>], already: usize) -> Result<Vec<CleanPhoto>, WhistleError> {
    if uploads.len() + already > photos::MAX_PHOTOS {
        return Err(WhistleError::invalid("photos", "每个举报最多9张照片"));
    }
    uploads
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            photos::clean(bytes)
                .map_err(|e| WhistleError::invalid(&format!("photos[{i}]"), e.message_zh()))
        })
        .collect()
}

/// [`clean_photos`] off the async runtime: decoding and re-encoding images
/// is CPU work.
async fn clean_photos_blocking(
    uploads: Vec<Vec<u8>>,
    already: usize,
) -> Result<Vec<CleanPhoto>, WhistleError> {
    tokio::task::spawn_blocking(move || clean_photos(&uploads, already))
        .await
        .map_err(|e| WhistleError::internal(e.into()))?
}

/// When a reporter-side step happened, as the report may record it: the
/// day's midnight for an anonymous reporter, the instant otherwise.
fn stamp(anonymous: bool, day: NaiveDate) -> DateTime<Utc> {
    if anonymous { midnight(day) } else { Utc::now() }
}

/// Where a reporter-side step's audit entries and events go: appended now
/// with the instant, or, for a citizen's anonymous report, held until the
/// day is over and stamped with its midnight.
#[derive(Debug, Clone, Copy)]
struct Trail<'a> {
    hidden: bool,
    day: NaiveDate,
    at: DateTime<Utc>,
    key: &'a ChainKey,
}

impl Trail<'_> {
    async fn record(
        &self,
        tx: &mut sqlx::PgConnection,
        actor: &Actor,
        action: AuditAction,
        report_id: i64,
        detail: serde_json::Value,
    ) -> Result<(), WhistleError> {
        if self.hidden {
            audit::defer(tx, self.day, actor, action, Some(report_id), detail).await
        } else {
            audit::record(
                tx,
                self.key,
                self.at,
                actor,
                action,
                Some(report_id),
                detail,
            )
            .await
        }
    }

    async fn event(
        &self,
        tx: &mut sqlx::PgConnection,
        kind: EventKind,
        payload: &serde_json::Value,
    ) -> Result<(), WhistleError> {
        if self.hidden {
            sqlx::query("INSERT INTO pending_events (day, kind, payload) VALUES ($1, $2, $3)")
                .bind(self.day)
                .bind(kind.as_str())
                .bind(payload)
                .execute(&mut *tx)
                .await?;
            Ok(())
        } else {
            Ok(OUTBOX.append(tx, kind.as_str(), payload, self.at).await?)
        }
    }
}
