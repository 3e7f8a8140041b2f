//! The staff side: who may see which report, moving a report through the
//! workflow (its states and edges are in [`crate::domain`]), and every read
//! and change written to the audit trail.

use chrono::{DateTime, NaiveDate, Utc};
use huimin_kit::auth::{Caller, Role};
use object_store::{ObjectStoreExt as _, path::Path as ObjectPath};

use crate::{
    OUTBOX, Whistle,
    audit::{self, Actor},
    domain::{Action, AuditAction, EventKind, Source, Status},
    error::WhistleError,
};

/// A report as staff see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportView {
    pub id: i64,
    pub number: String,
    #[sqlx(try_from = "String")]
    pub source: Source,
    pub anonymous: bool,
    pub text: String,
    pub subject_person_key: Option<String>,
    pub subject_village: Option<String>,
    pub subject_program: Option<String>,
    pub subject_project: Option<String>,
    pub subject_official: Option<String>,
    pub subject_official_town: Option<String>,
    pub town_code: Option<String>,
    pub category: String,
    pub category_label: String,
    pub department: String,
    pub priority: i32,
    pub matched_keywords: serde_json::Value,
    pub escalated: bool,
    pub linked_reports: serde_json::Value,
    pub ledger_facts: serde_json::Value,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub status_since: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub assigned_department: Option<String>,
    pub assigned_officer: Option<String>,
    pub received_on: NaiveDate,
}

/// What a full read adds to the summary.
#[derive(Debug, Clone, Default)]
pub struct ReportDetail {
    pub photos: Vec<(i64, String, i32, i32, i64)>,
    pub additions: Vec<String>,
    pub replies: Vec<(String, DateTime<Utc>)>,
}

/// Whether `caller` may see `report`: inspectors, admins and auditors see
/// everything; a department its reports; a town officer its town's reports,
/// except those about an official of that very town.
pub fn may_see(caller: &Caller, report: &ReportView) -> bool {
    let scope = caller.scope.as_deref();
    match caller.role {
        Role::Admin | Role::Inspector | Role::Auditor => true,
        Role::Department => scope.is_some_and(|s| {
            report.assigned_department.as_deref() == Some(s) || report.department == s
        }),
        Role::Town => {
            let own_official = report.subject_official_town.as_deref() == scope;
            !own_official
                && scope.is_some_and(|s| {
                    report.town_code.as_deref() == Some(s)
                        || report.assigned_department.as_deref() == Some(s)
                })
        }
        Role::Gateway | Role::Provincial | Role::Service => false,
    }
}

const VIEW: &str = "SELECT id, number, source, anonymous, text, subject_person_key, subject_village, subject_program,
        subject_project, subject_official, subject_official_town, town_code, category, category_label, department,
        priority, matched_keywords, escalated, linked_reports, ledger_facts, status, status_since, deadline,
        assigned_department, assigned_officer, received_on
    FROM reports";

fn actor(caller: &Caller) -> Actor {
    Actor::Staff(caller.sub.clone())
}

impl Whistle {
    /// Reports `caller` may see, most urgent first; the listing is audited.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<Status>,
        overdue_only: bool,
        limit: i64,
    ) -> Result<Vec<ReportView>, WhistleError> {
        // The scope rule of `may_see`, in SQL, so a scoped officer's list is
        // never cut short by other people's reports; `may_see` still guards.
        let scope = match caller.role {
            Role::Admin | Role::Inspector | Role::Auditor => "true",
            Role::Department => "(assigned_department = $3 OR department = $3)",
            Role::Town => {
                "(subject_official_town IS DISTINCT FROM $3 AND (town_code = $3 OR assigned_department = $3))"
            }
            Role::Gateway | Role::Provincial | Role::Service => "false",
        };
        let reports: Vec<ReportView> = sqlx::query_as(&format!(
            "{VIEW} WHERE ($1::text IS NULL OR status = $1) AND (NOT $2 OR deadline < now()) AND {scope}
             ORDER BY priority, deadline NULLS LAST, id LIMIT $4"
        ))
        .bind(status.map(Status::as_str))
        .bind(overdue_only)
        .bind(caller.scope.as_deref())
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        let visible: Vec<ReportView> = reports.into_iter().filter(|r| may_see(caller, r)).collect();
        let (anonymous, named): (Vec<&ReportView>, Vec<&ReportView>) =
            visible.iter().partition(|r| r.anonymous);
        let ids = |reports: Vec<&ReportView>| reports.iter().map(|r| r.id).collect::<Vec<i64>>();
        let mut tx = self.pool.begin().await?;
        audit::record(
            &mut tx,
            &self.audit.key,
            Utc::now(),
            &actor(caller),
            AuditAction::ReportsListed,
            None,
            serde_json::json!({"reports": ids(named)}),
        )
        .await?;
        // The first timed listing naming an anonymous report would date it:
        // those are named in one held entry per staff member and day.
        if !anonymous.is_empty() {
            let today = huimin_kit::clock::china_today();
            audit::defer_listing(&mut tx, today, &actor(caller), &ids(anonymous)).await?;
        }
        tx.commit().await?;
        Ok(visible)
    }

    async fn visible(&self, caller: &Caller, id: i64) -> Result<ReportView, WhistleError> {
        let report: ReportView = sqlx::query_as(&format!("{VIEW} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(WhistleError::not_found("举报不存在"))?;
        if !may_see(caller, &report) {
            return Err(WhistleError::forbidden("无权查看该举报"));
        }
        Ok(report)
    }

    /// One report in full; the read is audited.
    pub async fn get(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<(ReportView, ReportDetail), WhistleError> {
        let report = self.visible(caller, id).await?;
        let mut tx = self.pool.begin().await?;
        let photos = sqlx::query_as("SELECT id, kind, width, height, bytes FROM report_photos WHERE report_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let additions = sqlx::query_scalar(
            "SELECT text FROM report_additions WHERE report_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let replies =
            sqlx::query_as("SELECT text, at FROM report_replies WHERE report_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        audit::record(
            &mut tx,
            &self.audit.key,
            Utc::now(),
            &actor(caller),
            AuditAction::ReportRead,
            Some(id),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok((
            report,
            ReportDetail {
                photos,
                additions,
                replies,
            },
        ))
    }

    /// One photo's bytes; the read is audited.
    pub async fn photo(
        &self,
        caller: &Caller,
        photo_id: i64,
    ) -> Result<(String, Vec<u8>), WhistleError> {
        let (report_id, key, kind, content): (i64, String, String, Option<Vec<u8>>) =
            sqlx::query_as(
                "SELECT report_id, object_key, kind, content FROM report_photos WHERE id = $1",
            )
            .bind(photo_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(WhistleError::not_found("照片不存在"))?;
        self.visible(caller, report_id).await?;
        // An anonymous report's photos are in the database unless an object store
        // keeps them (see PhotoHome).
        let bytes = match content {
            Some(bytes) => bytes,
            None => self
                .attachments
                .get(&ObjectPath::from(key.as_str()))
                .await?
                .bytes()
                .await?
                .to_vec(),
        };
        let mut tx = self.pool.begin().await?;
        audit::record(
            &mut tx,
            &self.audit.key,
            Utc::now(),
            &actor(caller),
            AuditAction::PhotoRead,
            Some(report_id),
            serde_json::json!({"photo": photo_id}),
        )
        .await?;
        tx.commit().await?;
        Ok((kind, bytes))
    }

    /// Moves a report one step; refused if the workflow or the caller's role
    /// and scope don't allow it.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub, report_id = id, action = action.as_str()))]
    pub async fn transition(
        &self,
        caller: &Caller,
        id: i64,
        action: Action,
        department: &str,
        officer: &str,
        note: &str,
    ) -> Result<ReportView, WhistleError> {
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let report: ReportView = sqlx::query_as(&format!("{VIEW} WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(WhistleError::not_found("举报不存在"))?;
        if !may_see(caller, &report) {
            return Err(WhistleError::forbidden("无权办理该举报"));
        }
        let allowed = match (caller.role, action) {
            (Role::Admin | Role::Inspector, _) => true,
            (
                Role::Department | Role::Town,
                Action::StartVerifying | Action::Substantiate | Action::Unsubstantiate,
            ) => report.assigned_department.as_deref() == caller.scope.as_deref(),
            _ => false,
        };
        if !allowed {
            return Err(WhistleError::forbidden("当前角色无权执行此办理操作"));
        }
        let Some(to) = report.status.after(action) else {
            return Err(WhistleError::NotAllowed(format!(
                "举报当前为「{}」，不能执行此操作",
                report.status.label_zh()
            )));
        };
        let (department, officer, note) = (department.trim(), officer.trim(), note.trim());
        let mut assigned_department = report.assigned_department.clone();
        let mut assigned_officer = report.assigned_officer.clone();
        match action {
            Action::Assign | Action::Transfer => {
                if department.is_empty() {
                    return Err(WhistleError::invalid("department", "请指定承办单位"));
                }
                if report.subject_official_town.as_deref() == Some(department) {
                    return Err(WhistleError::NotAllowed(
                        "举报涉及该乡镇干部，不能交由该乡镇办理".to_owned(),
                    ));
                }
                if action == Action::Transfer
                    && report.assigned_department.as_deref() == Some(department)
                {
                    return Err(WhistleError::invalid(
                        "department",
                        "转办单位与当前承办单位相同",
                    ));
                }
                assigned_department = Some(department.to_owned());
                assigned_officer = (!officer.is_empty()).then(|| officer.to_owned());
            }
            Action::Substantiate if note.is_empty() => {
                return Err(WhistleError::invalid("note", "查实立案须填写立案号"));
            }
            Action::Unsubstantiate if note.is_empty() => {
                return Err(WhistleError::invalid("note", "办结须填写给举报人的答复"));
            }
            _ => {}
        }
        let now = Utc::now();
        let case_number = (action == Action::Substantiate).then_some(note);
        sqlx::query(
            "UPDATE reports SET status = $2, status_since = $3, deadline = $4, assigned_department = $5,
                 assigned_officer = $6, case_number = COALESCE($7, case_number)
             WHERE id = $1",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(now)
        .bind(to.deadline(now))
        .bind(&assigned_department)
        .bind(&assigned_officer)
        .bind(case_number)
        .execute(&mut *tx)
        .await?;
        let reply = match action {
            Action::Unsubstantiate => Some(note.to_owned()),
            Action::Substantiate => {
                Some("经核查，反映的问题属实，已立案处理。感谢您的监督。".to_owned())
            }
            _ => None,
        };
        if let Some(reply) = &reply {
            sqlx::query("INSERT INTO report_replies (report_id, text) VALUES ($1, $2)")
                .bind(id)
                .bind(reply)
                .execute(&mut *tx)
                .await?;
        }
        let detail = serde_json::json!({
            "action": action.as_str(), "from": report.status.as_str(), "to": to.as_str(),
            "department": assigned_department, "officer": assigned_officer, "note": note,
        });
        audit::record(
            &mut tx,
            &self.audit.key,
            now,
            &actor(caller),
            AuditAction::ReportTransition,
            Some(id),
            detail,
        )
        .await?;
        let openid: Option<String> =
            sqlx::query_scalar("SELECT reporter_openid FROM reports WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let mut event = serde_json::json!({
            "report_id": id, "number": report.number, "status": to.as_str(), "status_label": to.label_zh(),
        });
        if let Some(openid) = openid {
            // Only a real-name reporter can be told; an anonymous one follows up by receipt code.
            event["reporter_openid"] = openid.into();
        }
        OUTBOX
            .append(
                &mut tx,
                EventKind::ReportStatusChanged.as_str(),
                &event,
                now,
            )
            .await?;
        let updated: ReportView = sqlx::query_as(&format!("{VIEW} WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(to = to.as_str(), "report moved");
        Ok(updated)
    }
}
