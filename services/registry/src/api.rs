//! registry's gRPC edge: protobuf in, domain types, protobuf out. Access rules
//! per RPC are in [`policy`]; scope within a role is checked by the domain.

use huimin_kit::wire::{non_empty, timestamp};
use huimin_kit::{
    auth::{Access, Policy, Role, caller},
    keyset::{self, ExportStream},
    outbox,
    status::FieldViolation,
};
use huimin_proto::{
    common::v1 as common,
    registry::v1::{
        self as pb,
        registry_service_server::{RegistryService, RegistryServiceServer},
    },
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Registry, RegistryError,
    domain::{Details, Funding, Kind, Milestone, Status as ProjectStatus, parse_date, valid_code},
    export::ExportFilter,
    lookup::Search,
    projects::{Project, Version, today},
};

/// Who may call which registry RPC.
pub fn policy() -> Policy {
    let service = <RegistryServiceServer<RegistryApi> as tonic::server::NamedService>::NAME;
    let writers: &'static [Role] = &[Role::Admin, Role::Inspector, Role::Department, Role::Town];
    let readers: &'static [Role] = &[
        Role::Admin,
        Role::Inspector,
        Role::Department,
        Role::Town,
        Role::Auditor,
    ];
    let feeds: &'static [Role] = &[Role::Provincial, Role::Admin, Role::Inspector];
    Policy::new()
        .rule(service, "CreateProject", Access::Roles(writers))
        .rule(service, "UpdateProject", Access::Roles(writers))
        .rule(service, "ChangeStatus", Access::Roles(writers))
        .rule(service, "ImportProjects", Access::Roles(writers))
        .rule(service, "GetProject", Access::Roles(readers))
        .rule(service, "ListVersions", Access::Roles(readers))
        .rule(service, "SearchProjects", Access::Public)
        .rule(service, "PublicProject", Access::Public)
        .rule(service, "ExportProjects", Access::Roles(feeds))
        .rule(
            service,
            "WatchEvents",
            Access::RolesOrServices(feeds, &["notify"]),
        )
        .long_running(service, "ImportProjects")
}

/// The tonic service over [`Registry`].
#[derive(Clone)]
pub struct RegistryApi {
    registry: Registry,
}

impl RegistryApi {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    pub fn into_server(self) -> RegistryServiceServer<Self> {
        RegistryServiceServer::new(self).max_encoding_message_size(64 * 1024 * 1024)
    }
}

fn date_text(date: Option<chrono::NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}

fn kind_to_pb(kind: Kind) -> pb::ProjectKind {
    match kind {
        Kind::Roads => pb::ProjectKind::Roads,
        Kind::Water => pb::ProjectKind::Water,
        Kind::Housing => pb::ProjectKind::Housing,
        Kind::Industry => pb::ProjectKind::Industry,
        Kind::Education => pb::ProjectKind::Education,
        Kind::Health => pb::ProjectKind::Health,
        Kind::Environment => pb::ProjectKind::Environment,
        Kind::Other => pb::ProjectKind::Other,
    }
}

fn kind_from_pb(kind: i32) -> Option<Kind> {
    match pb::ProjectKind::try_from(kind).ok()? {
        pb::ProjectKind::Unspecified => None,
        pb::ProjectKind::Roads => Some(Kind::Roads),
        pb::ProjectKind::Water => Some(Kind::Water),
        pb::ProjectKind::Housing => Some(Kind::Housing),
        pb::ProjectKind::Industry => Some(Kind::Industry),
        pb::ProjectKind::Education => Some(Kind::Education),
        pb::ProjectKind::Health => Some(Kind::Health),
        pb::ProjectKind::Environment => Some(Kind::Environment),
        pb::ProjectKind::Other => Some(Kind::Other),
    }
}

fn status_to_pb(status: ProjectStatus) -> pb::ProjectStatus {
    match status {
        ProjectStatus::Planned => pb::ProjectStatus::Planned,
        ProjectStatus::Approved => pb::ProjectStatus::Approved,
        ProjectStatus::UnderConstruction => pb::ProjectStatus::UnderConstruction,
        ProjectStatus::Accepted => pb::ProjectStatus::Accepted,
        ProjectStatus::Cancelled => pb::ProjectStatus::Cancelled,
    }
}

fn status_from_pb(status: i32) -> Option<ProjectStatus> {
    match pb::ProjectStatus::try_from(status).ok()? {
        pb::ProjectStatus::Unspecified => None,
        pb::ProjectStatus::Planned => Some(ProjectStatus::Planned),
        pb::ProjectStatus::Approved => Some(ProjectStatus::Approved),
        pb::ProjectStatus::UnderConstruction => Some(ProjectStatus::UnderConstruction),
        pb::ProjectStatus::Accepted => Some(ProjectStatus::Accepted),
        pb::ProjectStatus::Cancelled => Some(ProjectStatus::Cancelled),
    }
}

/// The protobuf details as domain details; problems of form (dates, enums)
/// are reported together, the domain's rules are checked by the writes.
fn details_from_pb(details: Option<pb::ProjectDetails>) -> Result<Details, RegistryError> {
    let d = details.ok_or_else(|| RegistryError::invalid("details", "请填写项目信息"))?;
    let mut problems = Vec::new();
    let mut date = |field: &str, text: &str| {
        parse_date(text)
            .map_err(|m| problems.push(FieldViolation::new(field, m)))
            .unwrap_or(None)
    };
    let planned_start = date("planned_start", &d.planned_start);
    let planned_end = date("planned_end", &d.planned_end);
    let actual_start = date("actual_start", &d.actual_start);
    let actual_end = date("actual_end", &d.actual_end);
    let milestones: Vec<Milestone> = d
        .milestones
        .into_iter()
        .enumerate()
        .map(|(i, m)| Milestone {
            planned_date: date(&format!("milestones[{i}].planned_date"), &m.planned_date),
            done_date: date(&format!("milestones[{i}].done_date"), &m.done_date),
            name: m.name.trim().to_owned(),
            note: m.note.trim().to_owned(),
        })
        .collect();
    let kind = kind_from_pb(d.kind);
    if kind.is_none() {
        problems.push(FieldViolation::new("kind", "请选择项目类型"));
    }
    let funding = d.funding.unwrap_or_default();
    let village = d.village_code.trim().to_owned();
    if !problems.is_empty() {
        return Err(RegistryError::invalid_all(problems));
    }
    Ok(Details {
        name: d.name.trim().to_owned(),
        kind: kind.unwrap_or(Kind::Other),
        town_code: d.town_code.trim().to_owned(),
        village_code: (!village.is_empty()).then_some(village),
        year: d.year,
        funding: Funding {
            central_fen: funding.central_fen,
            region_fen: funding.region_fen,
            city_fen: funding.city_fen,
            county_fen: funding.county_fen,
            other_fen: funding.other_fen,
        },
        approved_fen: d.approved_fen,
        disbursed_fen: d.disbursed_fen,
        contractor: d.contractor.trim().to_owned(),
        department: d.department.trim().to_owned(),
        officer: d.officer.trim().to_owned(),
        planned_start,
        planned_end,
        actual_start,
        actual_end,
        beneficiary_households: i32::try_from(d.beneficiary_households).unwrap_or(i32::MAX),
        milestones,
    })
}

fn details_to_pb(d: Details) -> pb::ProjectDetails {
    pb::ProjectDetails {
        name: d.name,
        kind: kind_to_pb(d.kind) as i32,
        town_code: d.town_code,
        village_code: d.village_code.unwrap_or_default(),
        year: d.year,
        funding: Some(pb::Funding {
            central_fen: d.funding.central_fen,
            region_fen: d.funding.region_fen,
            city_fen: d.funding.city_fen,
            county_fen: d.funding.county_fen,
            other_fen: d.funding.other_fen,
        }),
        approved_fen: d.approved_fen,
        disbursed_fen: d.disbursed_fen,
        contractor: d.contractor,
        department: d.department,
        officer: d.officer,
        planned_start: date_text(d.planned_start),
        planned_end: date_text(d.planned_end),
        actual_start: date_text(d.actual_start),
        actual_end: date_text(d.actual_end),
        beneficiary_households: u32::try_from(d.beneficiary_households).unwrap_or(0),
        milestones: d
            .milestones
            .into_iter()
            .map(|m| pb::Milestone {
                name: m.name,
                planned_date: date_text(m.planned_date),
                done_date: date_text(m.done_date),
                note: m.note,
            })
            .collect(),
    }
}

fn project_to_pb(p: Project) -> pb::Project {
    pb::Project {
        id: p.id,
        code: p.code,
        details: Some(details_to_pb(p.details)),
        status: status_to_pb(p.status) as i32,
        version: p.version,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

fn changes_to_pb(changes: &serde_json::Value) -> Vec<pb::FieldChange> {
    changes
        .as_object()
        .into_iter()
        .flatten()
        .map(|(field, change)| pb::FieldChange {
            field: field.clone(),
            old_json: change.get(0).map(ToString::to_string).unwrap_or_default(),
            new_json: change.get(1).map(ToString::to_string).unwrap_or_default(),
        })
        .collect()
}

fn version_to_pb(v: Version) -> pb::ProjectVersion {
    pb::ProjectVersion {
        version: v.version,
        changes: changes_to_pb(&v.changes),
        staff: v.staff,
        role: v.role,
        at: Some(timestamp(v.at)),
        action: v.action,
        note: v.note,
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let details = details_from_pb(request.details)?;
        let project = self
            .registry
            .create(&caller, request.code.trim(), details)
            .await?;
        Ok(Response::new(project_to_pb(project)))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let details = details_from_pb(request.details)?;
        let project = self
            .registry
            .update(
                &caller,
                request.code.trim(),
                request.expected_version,
                details,
            )
            .await?;
        Ok(Response::new(project_to_pb(project)))
    }

    async fn change_status(
        &self,
        request: Request<pb::ChangeStatusRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let to = status_from_pb(request.status)
            .ok_or_else(|| RegistryError::invalid("status", "请选择项目状态"))?;
        let on = parse_date(&request.date)
            .map_err(|m| RegistryError::invalid("date", m))?
            .unwrap_or_else(today);
        let project = self
            .registry
            .change_status(
                &caller,
                request.code.trim(),
                request.expected_version,
                to,
                &request.reason,
                on,
            )
            .await?;
        Ok(Response::new(project_to_pb(project)))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::Project>, Status> {
        let caller = caller(&request)?.clone();
        let code = request.into_inner().code;
        let project = self.registry.project_for(&caller, code.trim()).await?;
        Ok(Response::new(project_to_pb(project)))
    }

    async fn list_versions(
        &self,
        request: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let caller = caller(&request)?.clone();
        let code = request.into_inner().code;
        let versions = self.registry.versions(&caller, code.trim()).await?;
        Ok(Response::new(pb::ListVersionsResponse {
            versions: versions.into_iter().map(version_to_pb).collect(),
        }))
    }

    async fn import_projects(
        &self,
        request: Request<Streaming<pb::ImportProjectsChunk>>,
    ) -> Result<Response<pb::ImportProjectsResponse>, Status> {
        let caller = caller(&request)?.clone();
        let (file_name, bytes) = huimin_kit::upload::collect(
            request.into_inner(),
            self.registry.imports.max_bytes,
            |c: pb::ImportProjectsChunk| (c.file_name, c.data),
        )
        .await?;
        let outcome = self.registry.import(&caller, &file_name, bytes).await?;
        Ok(Response::new(pb::ImportProjectsResponse {
            created: outcome.created,
            approved_fen: outcome.approved_fen,
        }))
    }

    async fn search_projects(
        &self,
        request: Request<pb::SearchProjectsRequest>,
    ) -> Result<Response<pb::SearchProjectsResponse>, Status> {
        let request = request.into_inner();
        let search = Search {
            town: non_empty(&request.town_code),
            village: non_empty(&request.village_code),
            kind: kind_from_pb(request.kind),
            year: (request.year != 0).then_some(request.year),
        };
        let page = request.page.unwrap_or_default();
        let found = self
            .registry
            .search(&search, &page.page_token, page.page_size)
            .await?;
        Ok(Response::new(pb::SearchProjectsResponse {
            projects: found
                .projects
                .into_iter()
                .map(|p| pb::PublicSummary {
                    code: p.code,
                    name: p.details.name,
                    kind: kind_to_pb(p.details.kind) as i32,
                    town_code: p.details.town_code,
                    village_code: p.details.village_code.unwrap_or_default(),
                    year: p.details.year,
                    status: status_to_pb(p.status) as i32,
                    approved_fen: p.details.approved_fen,
                    disbursed_fen: p.details.disbursed_fen,
                    contractor: p.details.contractor,
                    department: p.details.department,
                    officer: p.details.officer,
                    beneficiary_households: u32::try_from(p.details.beneficiary_households)
                        .unwrap_or(0),
                })
                .collect(),
            next_page_token: found.next_page_token,
            totals: Some(pb::SearchTotals {
                projects: u64::try_from(found.totals.projects).unwrap_or(0),
                approved_fen: found.totals.approved_fen,
                disbursed_fen: found.totals.disbursed_fen,
                beneficiary_households: u64::try_from(found.totals.households).unwrap_or(0),
            }),
        }))
    }

    async fn public_project(
        &self,
        request: Request<pb::PublicProjectRequest>,
    ) -> Result<Response<pb::PublicProjectResponse>, Status> {
        let code = request.into_inner().code;
        let code = code.trim();
        if !valid_code(code) {
            return Err(RegistryError::not_found("项目不存在").into());
        }
        let found = self.registry.public_project(code).await?;
        Ok(Response::new(pb::PublicProjectResponse {
            code: found.project.code,
            status: status_to_pb(found.project.status) as i32,
            details: Some(details_to_pb(found.project.details)),
            money_history: found
                .money_history
                .into_iter()
                .map(|m| pb::MoneyChange {
                    at: Some(timestamp(m.at)),
                    changes: changes_to_pb(&m.changes),
                })
                .collect(),
        }))
    }

    type ExportProjectsStream = ExportStream<pb::ExportProjectsResponse>;

    async fn export_projects(
        &self,
        request: Request<pb::ExportProjectsRequest>,
    ) -> Result<Response<Self::ExportProjectsStream>, Status> {
        let request = request.into_inner();
        let filter = ExportFilter {
            town: non_empty(&request.town_code),
            year: (request.year != 0).then_some(request.year),
        };
        let source = ProjectExport {
            registry: self.registry.clone(),
            filter,
        };
        Ok(Response::new(keyset::export(
            source,
            request.after_cursor,
            request.batch_size,
        )))
    }

    type WatchEventsStream = outbox::EventStream;

    async fn watch_events(
        &self,
        request: Request<common::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let pool = self.registry.pool.clone();
        Ok(Response::new(outbox::watch(pool, request.into_inner())))
    }
}

/// The projects one export reads.
struct ProjectExport {
    registry: Registry,
    filter: ExportFilter,
}

impl keyset::Export for ProjectExport {
    type Row = Project;
    type Error = RegistryError;
    type Message = pb::ExportProjectsResponse;
    const DEFAULT_BATCH: u32 = 500;
    const MAX_BATCH: u32 = 5_000;

    fn id(row: &Project) -> i64 {
        row.id
    }

    fn batch(&self, after: i64, size: i64) -> keyset::Batch<'_, Self> {
        Box::pin(self.registry.export_batch(&self.filter, after, size))
    }

    fn message(rows: Vec<Project>, cursor: i64) -> pb::ExportProjectsResponse {
        pb::ExportProjectsResponse {
            projects: rows.into_iter().map(project_to_pb).collect(),
            cursor,
        }
    }
}
