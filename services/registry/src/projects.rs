//! Projects as stored, and the staff writes: create, update, status change.
//! Each write runs in one transaction under the outbox writers' lock and
//! leaves a version row (who, when, what changed) and, where it matters to
//! followers, an event; the public cache moves on after commit.

use chrono::{DateTime, NaiveDate, Utc};
use huimin_kit::{auth::Caller, status::FieldViolation};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::{
    OUTBOX, Registry, RegistryError,
    domain::{Details, Funding, Kind, MONEY_FIELDS, Milestone, Status, diff, may_read, may_write},
};

/// A project with its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: i64,
    pub code: String,
    pub details: Details,
    pub status: Status,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of a project: who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Version {
    pub version: i64,
    pub staff: String,
    pub role: String,
    pub at: DateTime<Utc>,
    pub action: String,
    /// `{field: [old, new]}`.
    pub changes: serde_json::Value,
    pub note: String,
}

/// The columns of [`ProjectRow`], for every query that reads projects.
pub const PROJECT_COLUMNS: &str = "id, code, name, kind, town_code, village_code, year, central_fen,
    region_fen, city_fen, county_fen, other_fen, approved_fen, disbursed_fen, contractor, department,
    officer, planned_start, planned_end, actual_start, actual_end, beneficiary_households, milestones,
    status, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct ProjectRow {
    id: i64,
    code: String,
    name: String,
    kind: String,
    town_code: String,
    village_code: Option<String>,
    year: i32,
    central_fen: i64,
    region_fen: i64,
    city_fen: i64,
    county_fen: i64,
    other_fen: i64,
    approved_fen: i64,
    disbursed_fen: i64,
    contractor: String,
    department: String,
    officer: String,
    planned_start: Option<NaiveDate>,
    planned_end: Option<NaiveDate>,
    actual_start: Option<NaiveDate>,
    actual_end: Option<NaiveDate>,
    beneficiary_households: i32,
    milestones: serde_json::Value,
    status: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ProjectRow> for Project {
    type Error = RegistryError;
    fn try_from(row: ProjectRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str| {
            RegistryError::internal(anyhow::anyhow!("project {} has a bad {what}", row.id))
        };
        let kind: Kind = row.kind.parse().map_err(|_| corrupt("kind"))?;
        let status: Status = row.status.parse().map_err(|()| corrupt("status"))?;
        let milestones: Vec<Milestone> =
            serde_json::from_value(row.milestones.clone()).map_err(|_| corrupt("milestones"))?;
        Ok(Project {
            id: row.id,
            code: row.code,
            details: Details {
                name: row.name,
                kind,
                town_code: row.town_code,
                village_code: row.village_code,
                year: row.year,
                funding: Funding {
                    central_fen: row.central_fen,
                    region_fen: row.region_fen,
                    city_fen: row.city_fen,
                    county_fen: row.county_fen,
                    other_fen: row.other_fen,
                },
                approved_fen: row.approved_fen,
                disbursed_fen: row.disbursed_fen,
                contractor: row.contractor,
                department: row.department,
                officer: row.officer,
                planned_start: row.planned_start,
                planned_end: row.planned_end,
                actual_start: row.actual_start,
                actual_end: row.actual_end,
                beneficiary_households: row.beneficiary_households,
                milestones,
            },
            status,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// What staff may not touch.
const OUT_OF_SCOPE: &str = "只能登记和修改本乡镇或本单位的项目";

/// A project's state as versions compare it: its details and its status.
fn snapshot(details: &Details, status: Status) -> Result<serde_json::Value, RegistryError> {
    let mut value = serde_json::to_value(details)
        .map_err(|e| RegistryError::internal(anyhow::Error::new(e).context("snapshot")))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("status".into(), status.as_str().into());
    }
    Ok(value)
}

/// The day in China, which is what staff mean by "today".
pub fn today() -> NaiveDate {
    huimin_kit::clock::china_today()
}

/// Writes a new project and its first version; call with the writers' lock held.
pub async fn insert(
    tx: &mut PgConnection,
    caller: &Caller,
    code: &str,
    details: &Details,
    action: &str,
) -> Result<Project, RegistryError> {
    let d = details;
    let row: ProjectRow = sqlx::query_as(&format!(
        "INSERT INTO projects (code, name, kind, town_code, village_code, year, central_fen, region_fen,
             city_fen, county_fen, other_fen, approved_fen, disbursed_fen, contractor, department, officer,
             planned_start, planned_end, actual_start, actual_end, beneficiary_households, milestones,
             status, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 $20, $21, $22, 'planned', 1)
         RETURNING {PROJECT_COLUMNS}"
    ))
    .bind(code)
    .bind(d.name.trim())
    .bind(d.kind.as_str())
    .bind(&d.town_code)
    .bind(&d.village_code)
    .bind(d.year)
    .bind(d.funding.central_fen)
    .bind(d.funding.region_fen)
    .bind(d.funding.city_fen)
    .bind(d.funding.county_fen)
    .bind(d.funding.other_fen)
    .bind(d.approved_fen)
    .bind(d.disbursed_fen)
    .bind(&d.contractor)
    .bind(&d.department)
    .bind(&d.officer)
    .bind(d.planned_start)
    .bind(d.planned_end)
    .bind(d.actual_start)
    .bind(d.actual_end)
    .bind(d.beneficiary_households)
    .bind(milestones_json(&d.milestones)?)
    .fetch_one(&mut *tx)
    .await?;
    let project = Project::try_from(row)?;
    let changes = diff(None, &snapshot(&project.details, project.status)?);
    write_version(tx, caller, &project, action, &changes, "").await?;
    let payload = serde_json::json!({
        "project_id": project.id, "code": project.code, "name": project.details.name,
        "kind": project.details.kind.as_str(), "town_code": project.details.town_code,
        "village_code": project.details.village_code, "year": project.details.year,
        "approved_fen": project.details.approved_fen, "status": project.status.as_str(),
        "version": project.version,
    });
    OUTBOX
        .append(tx, "project.created", &payload, project.created_at)
        .await?;
    Ok(project)
}

fn milestones_json(milestones: &[Milestone]) -> Result<serde_json::Value, RegistryError> {
    serde_json::to_value(milestones)
        .map_err(|e| RegistryError::internal(anyhow::Error::new(e).context("milestones")))
}

async fn write_version(
    tx: &mut PgConnection,
    caller: &Caller,
    project: &Project,
    action: &str,
    changes: &serde_json::Value,
    note: &str,
) -> Result<(), RegistryError> {
    let money = MONEY_FIELDS.iter().any(|f| changes.get(f).is_some());
    sqlx::query(
        "INSERT INTO project_versions (project_id, version, staff, role, at, action, changes, money, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(project.id)
    .bind(project.version)
    .bind(&caller.sub)
    .bind(caller.role.as_str())
    .bind(project.updated_at)
    .bind(action)
    .bind(changes)
    .bind(money)
    .bind(note)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Replaces a project's details and status, moving its version on.
async fn save(
    tx: &mut PgConnection,
    id: i64,
    details: &Details,
    status: Status,
) -> Result<Project, RegistryError> {
    let d = details;
    let row: ProjectRow = sqlx::query_as(&format!(
        "UPDATE projects SET name = $2, kind = $3, town_code = $4, village_code = $5, year = $6,
             central_fen = $7, region_fen = $8, city_fen = $9, county_fen = $10, other_fen = $11,
             approved_fen = $12, disbursed_fen = $13, contractor = $14, department = $15, officer = $16,
             planned_start = $17, planned_end = $18, actual_start = $19, actual_end = $20,
             beneficiary_households = $21, milestones = $22, status = $23,
             version = version + 1, updated_at = now()
         WHERE id = $1
         RETURNING {PROJECT_COLUMNS}"
    ))
    .bind(id)
    .bind(d.name.trim())
    .bind(d.kind.as_str())
    .bind(&d.town_code)
    .bind(&d.village_code)
    .bind(d.year)
    .bind(d.funding.central_fen)
    .bind(d.funding.region_fen)
    .bind(d.funding.city_fen)
    .bind(d.funding.county_fen)
    .bind(d.funding.other_fen)
    .bind(d.approved_fen)
    .bind(d.disbursed_fen)
    .bind(&d.contractor)
    .bind(&d.department)
    .bind(&d.officer)
    .bind(d.planned_start)
    .bind(d.planned_end)
    .bind(d.actual_start)
    .bind(d.actual_end)
    .bind(d.beneficiary_households)
    .bind(milestones_json(&d.milestones)?)
    .bind(status.as_str())
    .fetch_one(&mut *tx)
    .await?;
    Project::try_from(row)
}

impl Registry {
    /// Every check of `details`, including identity's division list.
    async fn checked(&self, details: &Details) -> Result<(), RegistryError> {
        let mut problems = details.check(today());
        if problems.is_empty() {
            let place = [(details.town_code.as_str(), details.village_code.as_deref())];
            for (_, unknown) in self.unknown_places(&place).await? {
                let field = match unknown {
                    crate::divisions::UnknownPlace::Town => "town_code",
                    crate::divisions::UnknownPlace::Village => "village_code",
                };
                problems.push(FieldViolation::new(field, unknown.message_zh()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::invalid_all(problems))
        }
    }

    /// The project with this code, for reading.
    pub async fn project(&self, code: &str) -> Result<Project, RegistryError> {
        let row: Option<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(RegistryError::not_found("项目不存在"))?
            .try_into()
    }

    async fn project_for_update(
        tx: &mut PgConnection,
        code: &str,
    ) -> Result<Project, RegistryError> {
        let row: Option<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE code = $1 FOR UPDATE"
        ))
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?;
        row.ok_or(RegistryError::not_found("项目不存在"))?
            .try_into()
    }

    /// A staff member's view of a project: in their scope, or an auditor's.
    pub async fn project_for(&self, caller: &Caller, code: &str) -> Result<Project, RegistryError> {
        let project = self.project(code).await?;
        if !may_read(caller, &project.details) {
            return Err(RegistryError::forbidden("该项目不在您的管辖范围内"));
        }
        Ok(project)
    }

    /// Every version of a project, newest first.
    pub async fn versions(
        &self,
        caller: &Caller,
        code: &str,
    ) -> Result<Vec<Version>, RegistryError> {
        let project = self.project_for(caller, code).await?;
        Ok(sqlx::query_as(
            "SELECT version, staff, role, at, action, changes, note FROM project_versions
             WHERE project_id = $1 ORDER BY version DESC",
        )
        .bind(project.id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Registers a new project, status planned.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub))]
    pub async fn create(
        &self,
        caller: &Caller,
        code: &str,
        details: Details,
    ) -> Result<Project, RegistryError> {
        if !crate::domain::valid_code(code) {
            return Err(RegistryError::invalid(
                "code",
                "项目编号应为1至40位字母、数字、-或_",
            ));
        }
        if !may_write(caller, &details) {
            return Err(RegistryError::forbidden(OUT_OF_SCOPE));
        }
        self.checked(&details).await?;
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let project = insert(&mut tx, caller, code, &details, "created").await?;
        tx.commit().await?;
        tracing::info!(project_id = project.id, "project created");
        self.changed().await;
        Ok(project)
    }

    /// Replaces a project's details if `expected_version` is still current.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub))]
    pub async fn update(
        &self,
        caller: &Caller,
        code: &str,
        expected_version: i64,
        details: Details,
    ) -> Result<Project, RegistryError> {
        if !may_write(caller, &details) {
            return Err(RegistryError::forbidden(OUT_OF_SCOPE));
        }
        self.checked(&details).await?;
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let current = Self::project_for_update(&mut tx, code).await?;
        if !may_write(caller, &current.details) {
            return Err(RegistryError::forbidden(OUT_OF_SCOPE));
        }
        if current.version != expected_version {
            return Err(RegistryError::Stale);
        }
        if current.status == Status::Cancelled {
            return Err(RegistryError::Precondition("已取消的项目不能修改".into()));
        }
        let changes = diff(
            Some(&snapshot(&current.details, current.status)?),
            &snapshot(&details, current.status)?,
        );
        if changes.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(current);
        }
        let project = save(&mut tx, current.id, &details, current.status).await?;
        write_version(&mut tx, caller, &project, "updated", &changes, "").await?;
        let previous = current.details.disbursed_fen;
        if project.details.disbursed_fen != previous {
            let payload = serde_json::json!({
                "project_id": project.id, "code": project.code,
                "town_code": project.details.town_code, "village_code": project.details.village_code,
                "previous_fen": previous, "disbursed_fen": project.details.disbursed_fen,
                "delta_fen": project.details.disbursed_fen - previous,
                "approved_fen": project.details.approved_fen, "version": project.version,
            });
            OUTBOX
                .append(
                    &mut tx,
                    "project.funds_disbursed",
                    &payload,
                    project.updated_at,
                )
                .await?;
        }
        tx.commit().await?;
        tracing::info!(
            project_id = project.id,
            version = project.version,
            "project updated"
        );
        self.changed().await;
        Ok(project)
    }

    /// Moves a project along the status machine. Starting construction and
    /// acceptance fill the actual dates with `on` when they are still empty.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub, to = %to))]
    pub async fn change_status(
        &self,
        caller: &Caller,
        code: &str,
        expected_version: i64,
        to: Status,
        reason: &str,
        on: NaiveDate,
    ) -> Result<Project, RegistryError> {
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let current = Self::project_for_update(&mut tx, code).await?;
        if !may_write(caller, &current.details) {
            return Err(RegistryError::forbidden(OUT_OF_SCOPE));
        }
        if current.version != expected_version {
            return Err(RegistryError::Stale);
        }
        if !current.status.can_become(to) {
            return Err(RegistryError::Precondition(current.status.refusal(to)));
        }
        let reason = reason.trim();
        if to == Status::Cancelled && reason.is_empty() {
            return Err(RegistryError::invalid("reason", "取消项目须说明原因"));
        }
        if reason.chars().count() > 500 {
            return Err(RegistryError::invalid("reason", "原因不超过500个字"));
        }
        let mut details = current.details.clone();
        match to {
            Status::UnderConstruction => {
                details.actual_start.get_or_insert(on);
            }
            Status::Accepted => {
                details.actual_end.get_or_insert(on);
            }
            Status::Planned | Status::Approved | Status::Cancelled => {}
        }
        let problems = details.check(today());
        if !problems.is_empty() {
            return Err(RegistryError::invalid_all(problems));
        }
        let changes = diff(
            Some(&snapshot(&current.details, current.status)?),
            &snapshot(&details, to)?,
        );
        let project = save(&mut tx, current.id, &details, to).await?;
        write_version(
            &mut tx,
            caller,
            &project,
            "status_changed",
            &changes,
            reason,
        )
        .await?;
        let payload = serde_json::json!({
            "project_id": project.id, "code": project.code,
            "town_code": project.details.town_code, "village_code": project.details.village_code,
            "from": current.status.as_str(), "to": to.as_str(), "version": project.version,
        });
        OUTBOX
            .append(
                &mut tx,
                "project.status_changed",
                &payload,
                project.updated_at,
            )
            .await?;
        tx.commit().await?;
        tracing::info!(project_id = project.id, from = %current.status, "project status changed");
        self.changed().await;
        Ok(project)
    }
}
