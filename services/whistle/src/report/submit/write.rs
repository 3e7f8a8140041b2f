//! Storing a new report: its random id and number, its row, and what its
//! submission leaves in the audit trail and the outbox (held to the day's
//! end for a citizen's anonymous report).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::{
    Placement,
    link::{Linked, Routing},
};
use crate::{
    audit::Actor,
    chain::ChainKey,
    domain::{AuditAction, EventKind, Source, Status},
    error::WhistleError,
    report::Trail,
    triage::Subject,
};

/// A new report's row, as the steps before it decided.
pub(super) struct NewRow<'a> {
    pub id: i64,
    pub number: &'a str,
    pub source: Source,
    /// A citizen's anonymous report: stored as anonymous, its trail held.
    pub hidden: bool,
    pub reporter_openid: Option<&'a str>,
    pub receipt_hash: &'a [u8; 32],
    pub text: &'a str,
    pub chosen_category: Option<&'a str>,
    pub subject: &'a Subject,
    pub place: &'a Placement,
    pub category_label: &'a str,
    pub routing: &'a Routing,
    pub linked: &'a [i64],
    pub facts: &'a serde_json::Value,
    pub received_at: DateTime<Utc>,
    pub day: NaiveDate,
}

/// A new report's id and number, both random rather than sequential: a
/// sequence would let anyone holding two reports order an anonymous one
/// between real-name reports whose times are known. Call with the
/// writers' lock held, so the uniqueness check can't be raced.
pub(super) async fn fresh_identity(
    tx: &mut PgConnection,
    day: NaiveDate,
) -> Result<(i64, String), WhistleError> {
    use rand::Rng as _;
    loop {
        let (id, serial) = {
            let mut rng = rand::rngs::OsRng;
            // Below 2^53, so JSON clients read ids exactly.
            (
                rng.gen_range(1..(1_i64 << 53)),
                rng.gen_range(0..100_000_000_u32),
            )
        };
        let number = format!("JB{}{serial:08}", day.format("%Y"));
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM reports WHERE id = $1 OR number = $2)",
        )
        .bind(id)
        .bind(&number)
        .fetch_one(&mut *tx)
        .await?;
        if !taken {
            return Ok((id, number));
        }
    }
}

/// Inserts the report, triaged: it enters the workflow at `triaged`.
pub(super) async fn insert_report(
    tx: &mut PgConnection,
    row: &NewRow<'_>,
) -> Result<(), WhistleError> {
    let (subject, place, routing) = (row.subject, row.place, row.routing);
    let status = Status::Triaged;
    sqlx::query(
        "INSERT INTO reports (id, number, source, anonymous, reporter_openid, receipt_hash, text, chosen_category,
             subject_person_key, subject_village, subject_program, subject_project, subject_official,
             subject_official_town, subject_key, town_code, category, category_label, department, priority,
             matched_keywords, escalated, linked_reports, ledger_facts, status, status_since, deadline, received_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                 $21, $22, $23, $24, $25, $26, $27, $28)",
    )
    .bind(row.id)
    .bind(row.number)
    .bind(row.source.as_str())
    .bind(row.hidden)
    .bind(row.reporter_openid)
    .bind(row.receipt_hash.as_slice())
    .bind(row.text)
    .bind(row.chosen_category)
    .bind(&subject.person_key)
    .bind(&subject.village_code)
    .bind(&subject.program_code)
    .bind(&subject.project_code)
    .bind(&subject.official)
    .bind(&place.official_town)
    .bind(&place.subject_key)
    .bind(&place.town_code)
    .bind(&place.triage.category)
    .bind(row.category_label)
    .bind(&routing.department)
    .bind(routing.priority)
    .bind(serde_json::json!(place.triage.matched))
    .bind(routing.escalated)
    .bind(serde_json::json!(row.linked))
    .bind(row.facts)
    .bind(status.as_str())
    .bind(row.received_at)
    .bind(status.deadline(row.received_at))
    .bind(row.day)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The submission's audit entries (submitted, triaged, and each earlier
/// report it escalates, which escalate with it) and its `report.received`
/// event.
pub(super) async fn record_submission(
    tx: &mut PgConnection,
    key: &ChainKey,
    row: &NewRow<'_>,
    linked: &Linked,
    photos: usize,
    anonymous: bool,
) -> Result<(), WhistleError> {
    let id = row.id;
    let trail = Trail {
        hidden: row.hidden,
        day: row.day,
        at: row.received_at,
        key,
    };
    let (category, routing) = (&row.place.triage.category, row.routing);
    let actor = match row.source {
        Source::System => Actor::System,
        Source::Citizen => Actor::Reporter,
    };
    let submitted =
        serde_json::json!({"number": row.number, "photos": photos, "anonymous": anonymous});
    trail
        .record(tx, &actor, AuditAction::ReportSubmitted, id, submitted)
        .await?;
    let triaged = serde_json::json!({
        "category": category, "department": routing.department, "priority": routing.priority,
        "escalated": routing.escalated, "linked": row.linked,
    });
    trail
        .record(tx, &Actor::System, AuditAction::ReportTriaged, id, triaged)
        .await?;
    if routing.escalated {
        // The earlier reports about this subject escalate with it.
        sqlx::query(
            "UPDATE reports SET escalated = true, priority = 1 WHERE id = ANY($1) AND NOT escalated",
        )
        .bind(&linked.same_subject)
        .execute(&mut *tx)
        .await?;
        for earlier in &linked.same_subject {
            let detail = serde_json::json!({"escalated_by": id});
            trail
                .record(
                    tx,
                    &Actor::System,
                    AuditAction::ReportEscalated,
                    *earlier,
                    detail,
                )
                .await?;
        }
    }
    let received = serde_json::json!({
        "report_id": id, "number": row.number, "category": category,
        "department": routing.department, "priority": routing.priority,
        "escalated": routing.escalated,
    });
    trail.event(tx, EventKind::ReportReceived, &received).await
}
