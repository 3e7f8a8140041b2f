//! whistle's gRPC edge: protobuf in, domain types, protobuf out. Access rules
//! per RPC are in [`policy`].

use huimin_kit::auth::{Access, Policy, Role, caller};
use huimin_kit::wire::{non_empty, timestamp};
use huimin_proto::{
    common::v1 as common,
    whistle::v1::{
        self as pb,
        whistle_service_server::{WhistleService, WhistleServiceServer},
    },
};
use tonic::{Request, Response, Status};

use crate::{
    Whistle,
    domain::{self, Action, Source},
    error::WhistleError,
    report::NewReport,
    triage::Subject,
    workflow::{ReportDetail, ReportView},
};

/// Nine photos of up to 10 MB each, plus text.
const MAX_MESSAGE: usize = 100 * 1024 * 1024;

const STAFF: &[Role] = &[
    Role::Admin,
    Role::Inspector,
    Role::Department,
    Role::Town,
    Role::Auditor,
];

/// Who may call which whistle RPC.
pub fn policy() -> Policy {
    let service = <WhistleServiceServer<WhistleApi> as tonic::server::NamedService>::NAME;
    Policy::new()
        .rule(
            service,
            "SubmitReport",
            // Cross-check findings are filed by ledger, where the checks run.
            Access::RolesOrServices(&[Role::Gateway], &["ledger"]),
        )
        .rule(service, "FollowUp", Access::Roles(&[Role::Gateway]))
        .rule(service, "AddInformation", Access::Roles(&[Role::Gateway]))
        .rule(service, "ListReports", Access::Roles(STAFF))
        .rule(service, "GetReport", Access::Roles(STAFF))
        .rule(service, "GetPhoto", Access::Roles(STAFF))
        .rule(
            service,
            "Transition",
            Access::Roles(&[Role::Admin, Role::Inspector, Role::Department, Role::Town]),
        )
        .rule(
            service,
            "GetTriageRules",
            Access::Roles(&[Role::Admin, Role::Inspector, Role::Auditor]),
        )
        .rule(
            service,
            "SetTriageRules",
            Access::Roles(&[Role::Admin, Role::Inspector]),
        )
        .rule(
            service,
            "VerifyAudit",
            Access::Roles(&[Role::Admin, Role::Inspector, Role::Auditor]),
        )
        .rule(
            service,
            "WatchEvents",
            // Events carry a real-name reporter's openid: for notify alone.
            Access::Services(&["notify"]),
        )
}

/// The tonic service over [`Whistle`].
#[derive(Clone)]
pub struct WhistleApi {
    whistle: Whistle,
}

impl WhistleApi {
    pub fn new(whistle: Whistle) -> Self {
        Self { whistle }
    }

    pub fn into_server(self) -> WhistleServiceServer<Self> {
        WhistleServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

fn report(view: ReportView, detail: ReportDetail) -> pb::Report {
    let overdue = view.deadline.is_some_and(|d| d < chrono::Utc::now());
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v.as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
            .unwrap_or_default()
    };
    pb::Report {
        id: view.id,
        report_number: view.number,
        source: view.source.as_str().to_owned(),
        anonymous: view.anonymous,
        text: view.text,
        subject: Some(pb::Subject {
            person_key: view.subject_person_key.unwrap_or_default(),
            village_code: view.subject_village.unwrap_or_default(),
            program_code: view.subject_program.unwrap_or_default(),
            project_code: view.subject_project.unwrap_or_default(),
            official_name: view.subject_official.unwrap_or_default(),
            official_town_code: view.subject_official_town.unwrap_or_default(),
        }),
        triage: Some(pb::TriageResult {
            category: view.category,
            category_label: view.category_label,
            department: view.department,
            priority: view.priority,
            matched_keywords: strings(&view.matched_keywords),
            escalated: view.escalated,
            linked_reports: ids(&view.linked_reports),
            ledger_facts_json: view.ledger_facts.to_string(),
        }),
        status: view.status.as_str().to_owned(),
        assigned_department: view.assigned_department.unwrap_or_default(),
        assigned_officer: view.assigned_officer.unwrap_or_default(),
        received_on: view.received_on.to_string(),
        status_since: Some(timestamp(view.status_since)),
        deadline: view.deadline.map(timestamp),
        overdue,
        photos: detail
            .photos
            .into_iter()
            .map(|(id, kind, width, height, bytes)| pb::PhotoRef {
                id,
                kind,
                width: u32::try_from(width).unwrap_or(0),
                height: u32::try_from(height).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
            .collect(),
        additions: detail.additions,
        replies: detail
            .replies
            .into_iter()
            .map(|(text, at)| pb::Reply {
                text,
                at: Some(timestamp(at)),
            })
            .collect(),
        town_code: view.town_code.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl WhistleService for WhistleApi {
    async fn submit_report(
        &self,
        request: Request<pb::SubmitReportRequest>,
    ) -> Result<Response<pb::SubmitReportResponse>, Status> {
        let role = caller(&request)?.role;
        let request = request.into_inner();
        let source = if role == Role::Service {
            Source::System
        } else {
            Source::Citizen
        };
        // An anonymous report never takes the openid, whatever the gateway sent.
        let reporter_openid = match (source, request.anonymous) {
            (Source::Citizen, false) => Some(
                non_empty(&request.openid)
                    .ok_or_else(|| WhistleError::invalid("openid", "实名举报须先绑定微信身份"))?,
            ),
            _ => None,
        };
        let subject = request.subject.unwrap_or_default();
        let official_town = non_empty(&subject.official_town_code);
        let receipt = self
            .whistle
            .submit(NewReport {
                source,
                text: request.text,
                category: non_empty(&request.category),
                subject: Subject {
                    program_code: non_empty(&subject.program_code),
                    village_code: non_empty(&subject.village_code),
                    person_key: non_empty(&subject.person_key),
                    project_code: non_empty(&subject.project_code),
                    official: non_empty(&subject.official_name),
                },
                subject_official_town: official_town,
                photos: request.photos.into_iter().map(|p| p.data).collect(),
                reporter_openid,
            })
            .await?;
        Ok(Response::new(pb::SubmitReportResponse {
            receipt_code: receipt.code,
            report_number: receipt.number,
        }))
    }

    async fn follow_up(
        &self,
        request: Request<pb::FollowUpRequest>,
    ) -> Result<Response<pb::FollowUpResponse>, Status> {
        let request = request.into_inner();
        let follow = self
            .whistle
            .follow_up(&request.receipt_code, &request.client_key)
            .await?;
        Ok(Response::new(pb::FollowUpResponse {
            report_number: follow.number,
            status_label: follow.status.label_zh().to_owned(),
            status: follow.status.as_str().to_owned(),
            replies: follow
                .replies
                .into_iter()
                .map(|(text, at)| pb::Reply {
                    text,
                    at: Some(timestamp(at)),
                })
                .collect(),
            received_on: follow.received_on.to_string(),
        }))
    }

    async fn add_information(
        &self,
        request: Request<pb::AddInformationRequest>,
    ) -> Result<Response<pb::AddInformationResponse>, Status> {
        let request = request.into_inner();
        let photos = request.photos.into_iter().map(|p| p.data).collect();
        self.whistle
            .add_information(
                &request.receipt_code,
                &request.client_key,
                &request.text,
                photos,
            )
            .await?;
        Ok(Response::new(pb::AddInformationResponse {}))
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let limit = if request.limit == 0 {
            100
        } else {
            i64::from(request.limit)
        };
        let status = non_empty(&request.status)
            .map(|s| s.parse::<domain::Status>())
            .transpose()
            .map_err(|_| WhistleError::invalid("status", "未知的举报状态"))?;
        let reports = self
            .whistle
            .list(&caller, status, request.overdue_only, limit)
            .await?;
        Ok(Response::new(pb::ListReportsResponse {
            reports: reports
                .into_iter()
                .map(|r| report(r, ReportDetail::default()))
                .collect(),
        }))
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let caller = caller(&request)?.clone();
        let authorization = request.metadata().get("authorization").cloned();
        let (mut view, detail) = self.whistle.get(&caller, request.into_inner().id).await?;
        // A named person's payments: read as this reader, never stored (see facts.rs).
        if let (Some(person_key), Some(authorization)) = (&view.subject_person_key, authorization)
            && let Some(payments) = self
                .whistle
                .payments_for_reader(&authorization, person_key)
                .await
            && let Some(facts) = view.ledger_facts.as_object_mut()
        {
            facts.insert("person_payments".to_owned(), payments);
        }
        Ok(Response::new(report(view, detail)))
    }

    async fn get_photo(
        &self,
        request: Request<pb::GetPhotoRequest>,
    ) -> Result<Response<pb::PhotoContent>, Status> {
        let caller = caller(&request)?.clone();
        let (kind, data) = self
            .whistle
            .photo(&caller, request.into_inner().photo_id)
            .await?;
        Ok(Response::new(pb::PhotoContent { kind, data }))
    }

    async fn transition(
        &self,
        request: Request<pb::TransitionRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let action: Action = request
            .action
            .trim()
            .parse()
            .map_err(|_| WhistleError::invalid("action", "未知的办理操作"))?;
        let view = self
            .whistle
            .transition(
                &caller,
                request.id,
                action,
                &request.department,
                &request.officer,
                &request.note,
            )
            .await?;
        Ok(Response::new(report(view, ReportDetail::default())))
    }

    async fn get_triage_rules(
        &self,
        _request: Request<pb::GetTriageRulesRequest>,
    ) -> Result<Response<pb::TriageRules>, Status> {
        let rules = self.whistle.rules().await?;
        Ok(Response::new(pb::TriageRules {
            json: rules.to_json(),
        }))
    }

    async fn set_triage_rules(
        &self,
        request: Request<pb::TriageRules>,
    ) -> Result<Response<pb::TriageRules>, Status> {
        let caller = caller(&request)?.clone();
        let json = request.into_inner().json;
        let rules = self.whistle.set_rules(&caller, &json).await?;
        Ok(Response::new(pb::TriageRules {
            json: rules.to_json(),
        }))
    }

    async fn verify_audit(
        &self,
        _request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        let response = match self.whistle.verify_audit().await? {
            Ok(entries) => pb::VerifyAuditResponse {
                intact: true,
                entries: entries as u64,
                broken_at: 0,
                reason: String::new(),
            },
            Err(broken) => pb::VerifyAuditResponse {
                intact: false,
                entries: 0,
                broken_at: broken.seq,
                reason: broken.to_string(),
            },
        };
        Ok(Response::new(response))
    }

    type WatchEventsStream = huimin_kit::outbox::EventStream;

    async fn watch_events(
        &self,
        request: Request<common::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let pool = self.whistle.pool.clone();
        Ok(Response::new(huimin_kit::outbox::watch(
            pool,
            request.into_inner(),
        )))
    }
}
