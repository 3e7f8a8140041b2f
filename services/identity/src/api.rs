//! identity's gRPC edge: protobuf in, domain types, protobuf out. Access
//! rules per RPC are in [`policy`].

use std::pin::Pin;

use futures::Stream;
use huimin_kit::wire::timestamp;
use huimin_kit::{
    auth::{Access, Policy, Role, caller},
    pii::{IdNumber, PersonKey},
};
use huimin_proto::identity::v1::{
    self as pb,
    identity_service_server::{IdentityService, IdentityServiceServer},
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Identity, IdentityError, StreamedFact,
    bindings::{Lookup, OpenId},
    facts::{DatasetKind, store::FactFile},
    usage::{DayFigures, DayRange, UsageBatch, store::Recorded},
};

const STAFF: &[Role] = &[Role::Admin, Role::Inspector, Role::Town, Role::Auditor];

/// Who may call which identity RPC.
pub fn policy() -> Policy {
    let service = <IdentityServiceServer<IdentityApi> as tonic::server::NamedService>::NAME;
    Policy::new()
        .rule(service, "ListDivisions", Access::Public)
        .rule(service, "Login", Access::Public)
        .rule(service, "BindOpenId", Access::Roles(&[Role::Gateway]))
        .rule(
            service,
            "ResolveOpenId",
            // ledger: only until every ledger asks AuthorizeLookup (one release),
            // so a rolling upgrade that starts with identity keeps lookups working.
            Access::RolesOrServices(&[Role::Gateway], &["whistle", "ledger"]),
        )
        .rule(service, "UnbindOpenId", Access::Roles(&[Role::Gateway]))
        .rule(service, "AuthorizeLookup", Access::Services(&["ledger"]))
        // Department officers see their beneficiaries masked in ledger; the
        // full record is for staff whose scope is all persons or a town.
        .rule(service, "LookupPerson", Access::Roles(STAFF))
        .rule(
            service,
            "ListPersonalDataAccess",
            Access::Roles(&[Role::Admin, Role::Inspector, Role::Auditor]),
        )
        .rule(service, "ImportPersons", Access::Roles(&[Role::Admin]))
        .long_running(service, "ImportPersons")
        .rule(service, "ImportFacts", Access::Roles(&[Role::Admin]))
        .long_running(service, "ImportFacts")
        .rule(service, "CheckPersons", Access::Services(&["ledger"]))
        // A batch of up to 10,000 claims, part of a roll import.
        .long_running(service, "CheckPersons")
        .rule(
            service,
            "StreamPersonFacts",
            Access::RolesOrServices(
                &[Role::Provincial, Role::Admin, Role::Inspector],
                &["ledger"],
            ),
        )
        // The gateway flushes what it counted; staff who report on the
        // platform read the figures (no scope: they hold no personal data).
        .rule(service, "RecordUsage", Access::Roles(&[Role::Gateway]))
        .rule(
            service,
            "UsageFigures",
            Access::Roles(&[Role::Admin, Role::Inspector, Role::Auditor]),
        )
}

/// The tonic service over [`Identity`].
#[derive(Clone)]
pub struct IdentityApi {
    identity: Identity,
}

impl IdentityApi {
    pub fn new(identity: Identity) -> Self {
        Self { identity }
    }

    pub fn into_server(self) -> IdentityServiceServer<Self> {
        IdentityServiceServer::new(self)
            .max_decoding_message_size(16 * 1024 * 1024)
            .max_encoding_message_size(16 * 1024 * 1024)
    }
}

fn bound(person: crate::bindings::BoundPerson) -> pb::BoundPerson {
    pb::BoundPerson {
        person_key: person.person_key,
        name: person.name,
        id_number_masked: person.id_number_masked,
        household_code: person.household_code,
        village_code: person.village_code,
        relation: person.relation,
        bound_at: Some(timestamp(person.bound_at)),
    }
}

fn person_key(text: &str) -> Result<PersonKey, IdentityError> {
    PersonKey::from_hex(text)
        .map_err(|_| IdentityError::invalid("person_key", "person_key 应为64位十六进制"))
}

type FactStream = Pin<Box<dyn Stream<Item = Result<pb::PersonFact, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn list_divisions(
        &self,
        request: Request<pb::ListDivisionsRequest>,
    ) -> Result<Response<pb::ListDivisionsResponse>, Status> {
        let parent = request.into_inner().parent_code;
        let parent = if parent.is_empty() {
            self.identity.county.code().to_owned()
        } else {
            parent
        };
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT code, name, level, parent_code FROM divisions WHERE parent_code = $1 ORDER BY code",
        )
        .bind(&parent)
        .fetch_all(&self.identity.pool)
        .await
        .map_err(IdentityError::from)?;
        let divisions = rows
            .into_iter()
            .map(|(code, name, level, parent_code)| pb::Division {
                code,
                name,
                level: match level.as_str() {
                    "county" => pb::DivisionLevel::County,
                    "town" => pb::DivisionLevel::Town,
                    _ => pb::DivisionLevel::Village,
                } as i32,
                parent_code: parent_code.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::ListDivisionsResponse { divisions }))
    }

    async fn bind_open_id(
        &self,
        request: Request<pb::BindOpenIdRequest>,
    ) -> Result<Response<pb::BindOpenIdResponse>, Status> {
        let request = request.into_inner();
        let openid = OpenId::parse(&request.openid).map_err(IdentityError::from)?;
        let (person, remaining) = self
            .identity
            .bind(&openid, &request.id_number, &request.name)
            .await?;
        Ok(Response::new(pb::BindOpenIdResponse {
            person: Some(bound(person)),
            remaining_slots: remaining,
        }))
    }

    async fn resolve_open_id(
        &self,
        request: Request<pb::ResolveOpenIdRequest>,
    ) -> Result<Response<pb::ResolveOpenIdResponse>, Status> {
        let openid = OpenId::parse(&request.into_inner().openid).map_err(IdentityError::from)?;
        let persons = self.identity.resolve(&openid).await?;
        Ok(Response::new(pb::ResolveOpenIdResponse {
            persons: persons.into_iter().map(bound).collect(),
        }))
    }

    async fn unbind_open_id(
        &self,
        request: Request<pb::UnbindOpenIdRequest>,
    ) -> Result<Response<pb::UnbindOpenIdResponse>, Status> {
        let request = request.into_inner();
        let openid = OpenId::parse(&request.openid).map_err(IdentityError::from)?;
        let key = if request.person_key.is_empty() {
            None
        } else {
            Some(person_key(&request.person_key)?)
        };
        let removed = self.identity.unbind(&openid, key.as_ref()).await?;
        Ok(Response::new(pb::UnbindOpenIdResponse {
            removed: u32::try_from(removed).unwrap_or(u32::MAX),
        }))
    }

    async fn authorize_lookup(
        &self,
        request: Request<pb::AuthorizeLookupRequest>,
    ) -> Result<Response<pb::AuthorizeLookupResponse>, Status> {
        use pb::authorize_lookup_request::Subject;
        let request = request.into_inner();
        let openid = OpenId::parse(&request.openid).map_err(IdentityError::from)?;
        let subject = match request.subject {
            Some(Subject::PersonKey(key)) => Lookup::Person(person_key(&key)?),
            Some(Subject::HouseholdCode(code)) => Lookup::Household(code),
            None => {
                return Err(IdentityError::invalid("subject", "需指明查询的人员或家庭").into());
            }
        };
        let allowed = self.identity.may_read(&openid, &subject).await?;
        Ok(Response::new(pb::AuthorizeLookupResponse { allowed }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let source = crate::login::source_of(&request);
        let request = request.into_inner();
        let session = self
            .identity
            .login(request.username.trim(), &request.password, &source)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            token: session.token,
            expires_at: Some(timestamp(session.expires_at)),
            role: session.role.to_string(),
            scope: session.scope.unwrap_or_default(),
        }))
    }

    async fn lookup_person(
        &self,
        request: Request<pb::LookupPersonRequest>,
    ) -> Result<Response<pb::LookupPersonResponse>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let key = match request.subject {
            Some(pb::lookup_person_request::Subject::IdNumber(text)) => {
                let id = IdNumber::parse(&text)
                    .map_err(|e| IdentityError::invalid("id_number", e.message_zh()))?;
                self.identity.pii.keyer.key_of(&id)
            }
            Some(pb::lookup_person_request::Subject::PersonKey(text)) => person_key(&text)?,
            None => {
                return Err(
                    IdentityError::invalid("subject", "请提供身份证号或 person_key").into(),
                );
            }
        };
        let record = self
            .identity
            .lookup_person(&caller, &key, &request.reason)
            .await?;
        let key_hex = record.person_key.to_hex();
        Ok(Response::new(pb::LookupPersonResponse {
            person: Some(pb::Person {
                person_key: key_hex.clone(),
                name: record.name,
                id_number: record.id_number.expose().to_owned(),
                gender: record.gender,
                birth_date: record.birth_date.to_string(),
                household_code: record.household_code,
                relation: record.relation,
                town_code: record.village_code.chars().take(9).collect(),
                village_code: record.village_code,
                facts: record
                    .facts
                    .into_iter()
                    .map(|f| pb::PersonFact {
                        fact_id: f.id,
                        person_key: key_hex.clone(),
                        kind: f.kind,
                        since: f.since.to_string(),
                        until: f.until.map(|d| d.to_string()).unwrap_or_default(),
                        detail: f.detail,
                        ..Default::default()
                    })
                    .collect(),
            }),
        }))
    }

    async fn list_personal_data_access(
        &self,
        request: Request<pb::ListPersonalDataAccessRequest>,
    ) -> Result<Response<pb::ListPersonalDataAccessResponse>, Status> {
        let request = request.into_inner();
        let staff = Some(request.staff_username.as_str()).filter(|s| !s.is_empty());
        let person = if request.person_key.is_empty() {
            None
        } else {
            Some(person_key(&request.person_key)?)
        };
        let limit = if request.limit == 0 {
            100
        } else {
            i64::from(request.limit)
        };
        let entries = self
            .identity
            .personal_data_access(staff, person.as_ref(), limit)
            .await?;
        Ok(Response::new(pb::ListPersonalDataAccessResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::PersonalDataAccess {
                    id: e.id,
                    staff_username: e.staff,
                    person_key: PersonKey::from_slice(&e.person_key)
                        .map(|k| k.to_hex())
                        .unwrap_or_default(),
                    reason: e.reason,
                    method: e.method,
                    at: Some(timestamp(e.at)),
                })
                .collect(),
        }))
    }

    async fn import_persons(
        &self,
        request: Request<Streaming<pb::ImportPersonsChunk>>,
    ) -> Result<Response<pb::ImportPersonsResponse>, Status> {
        let (file_name, bytes) = huimin_kit::upload::collect(
            request.into_inner(),
            self.identity.imports.max_bytes,
            |c: pb::ImportPersonsChunk| (c.file_name, c.data),
        )
        .await?;
        let summary = self.identity.import_persons(&file_name, &bytes).await?;
        Ok(Response::new(pb::ImportPersonsResponse {
            persons: summary.persons,
            households: summary.households,
            created: summary.created,
            updated: summary.updated,
        }))
    }

    async fn import_facts(
        &self,
        request: Request<Streaming<pb::ImportFactsChunk>>,
    ) -> Result<Response<pb::ImportFactsResponse>, Status> {
        let imported_by = caller(&request)?.sub.clone();
        let ((file_name, kind, source), bytes) = huimin_kit::upload::collect(
            request.into_inner(),
            self.identity.imports.max_bytes,
            |c: pb::ImportFactsChunk| ((c.file_name, c.kind, c.source_department), c.data),
        )
        .await?;
        let kind = DatasetKind::parse(&kind).ok_or_else(|| {
            let kinds: Vec<&str> = DatasetKind::ALL.iter().map(DatasetKind::as_str).collect();
            IdentityError::invalid(
                "kind",
                format!("比对数据类型应为以下之一：{}", kinds.join("、")),
            )
        })?;
        let summary = self
            .identity
            .import_facts(FactFile {
                kind,
                source_department: &source,
                file_name: &file_name,
                bytes: &bytes,
                imported_by: &imported_by,
            })
            .await?;
        let n = |v: i32| u64::try_from(v).unwrap_or(0);
        Ok(Response::new(pb::ImportFactsResponse {
            import_id: summary.import_id,
            rows: n(summary.rows),
            inserted: n(summary.inserted),
            updated: n(summary.updated),
            unchanged: n(summary.unchanged),
            not_in_register: n(summary.not_in_register),
            duplicate: summary.duplicate,
        }))
    }

    async fn check_persons(
        &self,
        request: Request<pb::CheckPersonsRequest>,
    ) -> Result<Response<pb::CheckPersonsResponse>, Status> {
        use crate::check::Check;
        let claims: Vec<(String, String)> = request
            .into_inner()
            .claims
            .into_iter()
            .map(|c| (c.id_number, c.name))
            .collect();
        let checks = self.identity.check_persons(&claims).await?;
        let checks = checks
            .into_iter()
            .map(|check| {
                let (outcome, registered) = match check {
                    Check::Match(r) => (pb::CheckOutcome::Match, Some(r)),
                    Check::NameMismatch(r) => (pb::CheckOutcome::NameMismatch, Some(r)),
                    Check::Unknown => (pb::CheckOutcome::Unknown, None),
                    Check::InvalidIdNumber => (pb::CheckOutcome::InvalidIdNumber, None),
                };
                let mut answer = pb::PersonCheck {
                    outcome: outcome as i32,
                    ..Default::default()
                };
                if let Some(r) = registered {
                    answer.person_key = r.person_key.to_hex();
                    answer.household_code = r.household_code;
                    answer.village_code = r.village_code;
                    answer.id_number_masked = r.id_number_masked;
                    answer.deceased = r.deceased;
                }
                answer
            })
            .collect();
        Ok(Response::new(pb::CheckPersonsResponse { checks }))
    }

    async fn record_usage(
        &self,
        request: Request<pb::RecordUsageRequest>,
    ) -> Result<Response<pb::RecordUsageResponse>, Status> {
        let batch = usage_batch(request.into_inner())?;
        let recorded = self.identity.record_usage(&batch).await?;
        Ok(Response::new(pb::RecordUsageResponse {
            duplicate: recorded == Recorded::Duplicate,
        }))
    }

    async fn usage_figures(
        &self,
        request: Request<pb::UsageFiguresRequest>,
    ) -> Result<Response<pb::UsageFiguresResponse>, Status> {
        let request = request.into_inner();
        let range = DayRange::parse(&request.from, &request.to)?;
        let days = self.identity.usage_figures(range).await?;
        Ok(Response::new(pb::UsageFiguresResponse {
            days: days.into_iter().map(usage_day).collect(),
        }))
    }

    type StreamPersonFactsStream = FactStream;

    async fn stream_person_facts(
        &self,
        request: Request<pb::StreamPersonFactsRequest>,
    ) -> Result<Response<Self::StreamPersonFactsStream>, Status> {
        let after = request.into_inner().after_version;
        let identity = self.identity.clone();
        let batches = huimin_kit::keyset::batches(
            after,
            FACTS_BATCH,
            |fact: &StreamedFact| fact.version,
            move |after| {
                let identity = identity.clone();
                async move { identity.facts_after(after, FACTS_BATCH).await }
            },
        );
        let facts = futures::StreamExt::flat_map(
            tokio_stream::wrappers::ReceiverStream::new(batches),
            |batch| {
                let facts: Vec<Result<pb::PersonFact, Status>> = match batch {
                    Ok((facts, _)) => facts.into_iter().map(|f| Ok(streamed(f))).collect(),
                    Err(status) => vec![Err(status)],
                };
                futures::stream::iter(facts)
            },
        );
        Ok(Response::new(Box::pin(facts)))
    }
}

/// The gateway's batch as identity's domain: every day, figure, count and
/// hash checked (an unknown figure is INVALID_ARGUMENT).
fn usage_batch(request: pb::RecordUsageRequest) -> Result<UsageBatch, IdentityError> {
    let mut batch = UsageBatch::new(&request.batch_id, huimin_kit::clock::china_today())?;
    for day in request.days {
        let date = batch.day(&day.day)?;
        for count in day.counts {
            batch.add_count(date, &count.figure, count.count)?;
        }
        for hash in &day.visitor_hashes {
            batch.add_visitor(date, hash)?;
        }
    }
    Ok(batch)
}

fn usage_day(day: DayFigures) -> pb::UsageFiguresDay {
    pb::UsageFiguresDay {
        day: day.day.to_string(),
        figures: day
            .figures
            .into_iter()
            .map(|(figure, count)| pb::UsageCount {
                figure: figure.as_str().to_owned(),
                count: u64::try_from(count).unwrap_or(0),
            })
            .collect(),
    }
}

const FACTS_BATCH: i64 = 1000;

fn streamed(fact: StreamedFact) -> pb::PersonFact {
    pb::PersonFact {
        fact_id: fact.fact_id,
        person_key: fact.person_key.to_hex(),
        kind: fact.kind,
        since: fact.since.to_string(),
        until: fact.until.map(|d| d.to_string()).unwrap_or_default(),
        detail: fact.detail,
        version: fact.version,
        source: fact.source,
        attrs: fact.attrs.into_iter().collect(),
    }
}
