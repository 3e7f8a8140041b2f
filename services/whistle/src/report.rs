//! The reporter's side: submitting a report (triaged on arrival), following
//! it up and adding information with the receipt code.
//!
//! Anonymity: an anonymous report's rows hold no openid and no time of day
//! (dates only, and midnight where a timestamp column needs a value); the
//! audit trail and events of its submission carry the same midnight. The
//! gateway's openid for an anonymous report is dropped here, unlogged.

use chrono::{DateTime, NaiveDate, Utc};
use huimin_proto::ledger::v1::{GroupBy, PersonPaymentsRequest, TotalsRequest};
use object_store::{ObjectStoreExt as _, path::Path as ObjectPath};
use sha2::{Digest as _, Sha256};

use crate::{
    OUTBOX, Whistle, WhistleError,
    audit::{self, Actor},
    photos::{self, CleanPhoto, PhotoKind},
    receipt,
    triage::{self, Subject},
};

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A citizen through the gateway.
    Citizen,
    /// A cross-check finding of another service.
    System,
}

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
    pub status: String,
    pub received_on: NaiveDate,
    pub replies: Vec<(String, DateTime<Utc>)>,
}

/// Reports escalate to discipline inspection (纪委监委).
pub const INSPECTION: &str = "博白县纪委监委";
const MAX_TEXT: usize = 5000;
const MAX_FAILURES_PER_HOUR: i64 = 10;

/// A report's day is counted in China time.
pub fn today() -> NaiveDate {
    huimin_kit::clock::china_today()
}

/// Midnight (China time) of `day`, as the only timestamp an anonymous report gets.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    huimin_kit::clock::china_midnight(day)
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "received" => "已收到",
        "triaged" => "已研判，待交办",
        "assigned" => "已交办",
        "verifying" => "核查中",
        "substantiated" => "已查实，已立案",
        "unsubstantiated" => "经核查未查实，已办结",
        _ => "处理中",
    }
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

impl Whistle {
    /// Files, triages and stores a report; returns the receipt, shown once.
    #[tracing::instrument(skip_all, fields(source = ?report.source))]
    pub async fn submit(&self, report: NewReport) -> Result<Receipt, WhistleError> {
        let text = report.text.trim().to_owned();
        if text.is_empty() || text.chars().count() > MAX_TEXT {
            return Err(WhistleError::invalid(
                "text",
                "请填写举报内容（不超过5000字）",
            ));
        }
        let uploads = report.photos;
        let cleaned = tokio::task::spawn_blocking(move || clean_photos(&uploads, 0))
            .await
            .map_err(|e| WhistleError::internal(e.into()))??;
        let anonymous = report.reporter_openid.is_none();
        // A citizen's anonymous report: its own trail waits for day's end.
        let hidden = anonymous && report.source == Source::Citizen;
        if let Some(openid) = &report.reporter_openid {
            self.check_bound(openid).await?;
        }
        let day = today();
        let received_at = if anonymous { midnight(day) } else { Utc::now() };

        let rules = self.rules().await?;
        let result = triage::triage(&rules, &text, report.category.as_deref(), &report.subject);
        let subject_key = triage::subject_key(&report.subject);
        let facts = self.ledger_facts(&report.subject).await;
        let town_code = report
            .subject
            .village_code
            .as_deref()
            .and_then(|v| v.get(..9))
            .map(str::to_owned);
        // A named official serves where the report is about unless told
        // otherwise: the report must not go to that town either way.
        let official_town = match (&report.subject_official_town, &report.subject.official) {
            (Some(town), _) => Some(town.clone()),
            (None, Some(_)) => town_code.clone(),
            (None, None) => None,
        };

        let code = receipt::new_code();
        let receipt_hash = receipt::hash(&code).ok_or_else(|| {
            WhistleError::internal(anyhow::anyhow!("fresh receipt code does not hash"))
        })?;
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        // Earlier reports about the same subject (person, project, named
        // official, or village and program): these count towards escalation.
        let linked: Vec<(i64, bool, Option<String>)> = match &subject_key {
            Some(key) => {
                sqlx::query_as(
                    "SELECT id, anonymous, reporter_openid FROM reports
                 WHERE subject_key = $1 AND received_on >= $2 AND source = 'citizen' ORDER BY id",
                )
                .bind(key)
                .bind(day - chrono::Days::new(u64::from(rules.escalation.window_days)))
                .fetch_all(&mut *tx)
                .await?
            }
            None => Vec::new(),
        };
        // Independent reporters: each anonymous report counts, a real-name
        // reporter counts once however often they write.
        let mut reporters: Vec<Option<&str>> = Vec::new();
        for (_, anonymous, openid) in &linked {
            let who = if *anonymous { None } else { openid.as_deref() };
            if who.is_none() || !reporters.contains(&who) {
                reporters.push(who);
            }
        }
        let this_reporter = report.reporter_openid.as_deref();
        let independent = reporters.len()
            + usize::from(this_reporter.is_none() || !reporters.contains(&this_reporter));
        let escalated =
            report.source == Source::Citizen && triage::should_escalate(&rules, independent);
        let (department, priority): (String, i32) = if escalated {
            (INSPECTION.to_owned(), 1)
        } else {
            (result.department.clone(), i32::from(result.priority))
        };
        let same_subject: Vec<i64> = linked.iter().map(|(id, _, _)| *id).collect();
        // For the reader, also the recent reports about the same village:
        // several reports about one village secretary rarely name him alike.
        let same_village: Vec<i64> = match &report.subject.village_code {
            Some(village) => {
                sqlx::query_scalar(
                    "SELECT id FROM reports WHERE subject_village = $1 AND received_on >= $2
                     AND NOT (id = ANY($3)) ORDER BY received_on DESC, id LIMIT 50",
                )
                .bind(village)
                .bind(day - chrono::Days::new(u64::from(rules.escalation.window_days)))
                .bind(&same_subject)
                .fetch_all(&mut *tx)
                .await?
            }
            None => Vec::new(),
        };
        let mut linked_ids: Vec<i64> = same_subject.iter().chain(&same_village).copied().collect();
        linked_ids.sort_unstable();

        let (id, number) = self.fresh_identity(&mut tx, day).await?;
        sqlx::query(
            "INSERT INTO reports (id, number, source, anonymous, reporter_openid, receipt_hash, text, chosen_category,
                 subject_person_key, subject_village, subject_program, subject_project, subject_official,
                 subject_official_town, subject_key, town_code, category, category_label, department, priority,
                 matched_keywords, escalated, linked_reports, ledger_facts, status, status_since, deadline, received_on)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                     $21, $22, $23, $24, 'triaged', $25, $26, $27)",
        )
        .bind(id)
        .bind(&number)
        .bind(if report.source == Source::System { "system" } else { "citizen" })
        .bind(anonymous && report.source == Source::Citizen)
        .bind(&report.reporter_openid)
        .bind(receipt_hash.as_slice())
        .bind(&text)
        .bind(&report.category)
        .bind(&report.subject.person_key)
        .bind(&report.subject.village_code)
        .bind(&report.subject.program_code)
        .bind(&report.subject.project_code)
        .bind(&report.subject.official)
        .bind(&official_town)
        .bind(&subject_key)
        .bind(&town_code)
        .bind(&result.category)
        .bind(rules.category(&result.category).map_or("其他", |c| c.name_zh.as_str()))
        .bind(&department)
        .bind(priority)
        .bind(serde_json::json!(result.matched))
        .bind(escalated)
        .bind(serde_json::json!(linked_ids))
        .bind(&facts)
        .bind(received_at)
        .bind(crate::workflow::deadline("triaged", received_at))
        .bind(day)
        .execute(&mut *tx)
        .await?;

        let written = self.store_photos(&mut tx, id, &cleaned, day).await?;
        if hidden {
            self.blur_file_times(&written, day);
        }
        // Files are written before the commit: remove them if it never comes.
        let finished = async {
            let actor = if report.source == Source::System {
                Actor::System
            } else {
                Actor::Reporter
            };
            let submitted =
                serde_json::json!({"number": number, "photos": cleaned.len(), "anonymous": anonymous});
            trail(
                &mut tx,
                hidden,
                day,
                received_at,
                &actor,
                "report.submitted",
                Some(id),
                submitted,
            )
            .await?;
            let triaged = serde_json::json!({
                "category": result.category, "department": department, "priority": priority,
                "escalated": escalated, "linked": linked_ids,
            });
            trail(
                &mut tx,
                hidden,
                day,
                received_at,
                &Actor::System,
                "report.triaged",
                Some(id),
                triaged,
            )
            .await?;
            if escalated {
                // The earlier reports about this subject escalate with it.
                sqlx::query("UPDATE reports SET escalated = true, priority = 1 WHERE id = ANY($1) AND NOT escalated")
                    .bind(&same_subject)
                    .execute(&mut *tx)
                    .await?;
                for earlier in &same_subject {
                    let detail = serde_json::json!({"escalated_by": id});
                    trail(
                        &mut tx,
                        hidden,
                        day,
                        received_at,
                        &Actor::System,
                        "report.escalated",
                        Some(*earlier),
                        detail,
                    )
                    .await?;
                }
            }
            let received = serde_json::json!({
                "report_id": id, "number": number, "category": result.category, "department": department,
                "priority": priority, "escalated": escalated,
            });
            event(&mut tx, hidden, day, received_at, "report.received", &received).await?;
            tx.commit().await?;
            Ok::<(), WhistleError>(())
        }
        .await;
        if let Err(error) = finished {
            self.remove_objects(&written).await;
            return Err(error);
        }
        // An anonymous report's id next to a log timestamp would date it.
        if anonymous {
            tracing::info!(category = %result.category, priority, escalated, "report received");
        } else {
            tracing::info!(report_id = id, category = %result.category, priority, escalated, "report received");
        }
        Ok(Receipt {
            code,
            number,
            report_id: id,
        })
    }

    /// A new report's id and number, both random rather than sequential: a
    /// sequence would let anyone holding two reports order an anonymous one
    /// between real-name reports whose times are known. Call with the
    /// writers' lock held, so the uniqueness check can't be raced.
    async fn fresh_identity(
        &self,
        tx: &mut sqlx::PgConnection,
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

    /// A real-name report comes from an openid bound to a registered person.
    async fn check_bound(&self, openid: &str) -> Result<(), WhistleError> {
        let Some(identity) = &self.identity else {
            return Err(WhistleError::internal(anyhow::anyhow!(
                "identity is not configured"
            )));
        };
        let request = huimin_proto::identity::v1::ResolveOpenIdRequest {
            openid: openid.to_owned(),
        };
        match identity.clone().resolve_open_id(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Err(WhistleError::invalid(
                "openid",
                "实名举报须先绑定本人身份信息，也可选择匿名举报",
            )),
            Err(status) => Err(WhistleError::peer_unavailable("identity", status)),
        }
    }

    /// Puts photos in the attachment store and records them; on failure the
    /// objects already written are removed again.
    pub(crate) async fn store_photos(
        &self,
        tx: &mut sqlx::PgConnection,
        report_id: i64,
        photos: &[CleanPhoto],
        day: NaiveDate,
    ) -> Result<Vec<ObjectPath>, WhistleError> {
        let mut written = Vec::new();
        for photo in photos {
            let ext = match photo.kind {
                PhotoKind::Jpeg => "jpg",
                PhotoKind::Png => "png",
            };
            let key = format!("reports/{report_id}/{}.{ext}", hex::encode(photo.sha256));
            let result = async {
                let inserted = sqlx::query(
                    "INSERT INTO report_photos (report_id, object_key, sha256, kind, width, height, bytes, added_on)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (object_key) DO NOTHING",
                )
                .bind(report_id)
                .bind(&key)
                .bind(photo.sha256.as_slice())
                .bind(if ext == "jpg" { "jpeg" } else { "png" })
                .bind(i32::try_from(photo.width).unwrap_or(i32::MAX))
                .bind(i32::try_from(photo.height).unwrap_or(i32::MAX))
                .bind(i64::try_from(photo.bytes.len()).unwrap_or(i64::MAX))
                .bind(day)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The same photo sent again is already stored: leave that file alone.
                if inserted == 0 {
                    return Ok(None);
                }
                let path = ObjectPath::from(key.as_str());
                self.attachments.put(&path, bytes::Bytes::from(photo.bytes.clone()).into()).await?;
                Ok::<_, WhistleError>(Some(path))
            }
            .await;
            match result {
                Ok(Some(path)) => written.push(path),
                Ok(None) => {}
                Err(error) => {
                    self.remove_objects(&written).await;
                    return Err(error);
                }
            }
        }
        Ok(written)
    }

    /// Sets an anonymous report's photo files' modification time to the
    /// day's midnight: the file system would otherwise keep the instant.
    fn blur_file_times(&self, written: &[ObjectPath], day: NaiveDate) {
        let midnight: std::time::SystemTime = midnight(day).into();
        for path in written {
            let file = self.attachments_dir.join(path.as_ref());
            let blurred = std::fs::File::options()
                .write(true)
                .open(&file)
                .and_then(|f| f.set_modified(midnight));
            if let Err(error) = blurred {
                tracing::warn!(%error, "could not clear an anonymous photo's file time");
            }
        }
    }

    /// Removes files written for a transaction that did not commit.
    pub(crate) async fn remove_objects(&self, written: &[ObjectPath]) {
        for path in written {
            if let Err(error) = self.attachments.delete(path).await {
                tracing::warn!(%error, "photo of a failed submission left in the attachment store");
            }
        }
    }

    /// What the ledger knows about the subject, for the first reader; empty
    /// when ledger can't be asked (triage never waits on it for long).
    async fn ledger_facts(&self, subject: &Subject) -> serde_json::Value {
        let Some(ledger) = &self.ledger else {
            return serde_json::json!({});
        };
        let mut facts = serde_json::Map::new();
        if let (Some(village), Some(program)) = (&subject.village_code, &subject.program_code) {
            let request = TotalsRequest {
                group_by: GroupBy::Year as i32,
                village_code: village.clone(),
                program_code: program.clone(),
                ..Default::default()
            };
            match ledger.clone().totals(request).await {
                Ok(totals) => {
                    let years: Vec<serde_json::Value> = totals
                        .into_inner()
                        .totals
                        .into_iter()
                        .map(|t| serde_json::json!({"year": t.key, "payments": t.payments, "persons": t.persons, "amount_fen": t.amount_fen}))
                        .collect();
                    facts.insert("village_program_by_year".to_owned(), years.into());
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "ledger totals unavailable for triage")
                }
            }
        }
        if let Some(person_key) = &subject.person_key {
            let request = PersonPaymentsRequest {
                person_key: person_key.clone(),
                ..Default::default()
            };
            match ledger.clone().person_payments(request).await {
                Ok(page) => {
                    let payments: Vec<serde_json::Value> = page
                        .into_inner()
                        .payments
                        .into_iter()
                        .map(|p| serde_json::json!({"program": p.program_code, "period": p.period, "amount_fen": p.amount_fen, "kind": p.kind}))
                        .collect();
                    facts.insert("person_payments".to_owned(), payments.into());
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "ledger payments unavailable for triage")
                }
            }
        }
        facts.into()
    }

    /// Finds the report of a receipt code, throttling wrong guesses per client.
    async fn by_receipt(&self, code: &str, client_key: &str) -> Result<(i64, bool), WhistleError> {
        if client_key.trim().is_empty() {
            return Err(WhistleError::invalid("client_key", "缺少调用方标识"));
        }
        let client = Sha256::digest(format!("receipt-client:{client_key}").as_bytes()).to_vec();
        let failures: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM receipt_failures WHERE client_hash = $1 AND failed_at > now() - interval '1 hour'",
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
                    "DELETE FROM receipt_failures WHERE failed_at < now() - interval '1 hour'",
                )
                .execute(&self.pool)
                .await?;
                sqlx::query("INSERT INTO receipt_failures (client_hash) VALUES ($1)")
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
        let at = if anonymous {
            midnight(today())
        } else {
            Utc::now()
        };
        trail(
            &mut tx,
            anonymous,
            today(),
            at,
            &Actor::Reporter,
            "report.followed_up",
            Some(id),
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
        let cleaned = tokio::task::spawn_blocking(move || clean_photos(&photos, already))
            .await
            .map_err(|e| WhistleError::internal(e.into()))??;
        let day = today();
        let at = if anonymous { midnight(day) } else { Utc::now() };
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
        let written = self.store_photos(&mut tx, id, &cleaned, day).await?;
        if anonymous {
            self.blur_file_times(&written, day);
        }
        // Files are written before the commit: remove them if it never comes.
        let finished = async {
            let detail = serde_json::json!({"text": !text.is_empty(), "photos": cleaned.len()});
            trail(
                &mut tx,
                anonymous,
                day,
                at,
                &Actor::Reporter,
                "report.information_added",
                Some(id),
                detail,
            )
            .await?;
            tx.commit().await?;
            Ok::<(), WhistleError>(())
        }
        .await;
        if let Err(error) = finished {
            self.remove_objects(&written).await;
            return Err(error);
        }
        Ok(())
    }
}

/// An audit entry of a reporter-side step: appended now, or for an
/// anonymous report held until the day is over.
#[allow(clippy::too_many_arguments)]
async fn trail(
    tx: &mut sqlx::PgConnection,
    hidden: bool,
    day: NaiveDate,
    at: DateTime<Utc>,
    actor: &Actor,
    action: &str,
    report_id: Option<i64>,
    detail: serde_json::Value,
) -> Result<(), WhistleError> {
    if hidden {
        audit::defer(tx, day, actor, action, report_id, detail).await
    } else {
        audit::record(tx, at, actor, action, report_id, detail).await
    }
}

/// An outbox event of a reporter-side step, likewise held for an anonymous report.
async fn event(
    tx: &mut sqlx::PgConnection,
    hidden: bool,
    day: NaiveDate,
    at: DateTime<Utc>,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), WhistleError> {
    if hidden {
        sqlx::query("INSERT INTO pending_events (day, kind, payload) VALUES ($1, $2, $3)")
            .bind(day)
            .bind(kind)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
        Ok(())
    } else {
        Ok(OUTBOX.append(tx, kind, payload, at).await?)
    }
}
