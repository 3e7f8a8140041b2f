//! ledger's gRPC edge: protobuf in, domain types, protobuf out. Access rules
//! per RPC are in [`policy`].

use huimin_kit::wire::{non_empty, timestamp};
use huimin_kit::{
    auth::{Access, Policy, Role, caller},
    keyset::{self, ExportStream},
    outbox,
    pii::PersonKey,
};
use huimin_proto::{
    common::v1 as common,
    ledger::v1::{
        self as pb,
        ledger_service_server::{LedgerService, LedgerServiceServer},
    },
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Ledger, LedgerError,
    checks::{
        Scope,
        findings::{FindingFilter, FindingRow, audit_run},
        rules::RuleId,
    },
    domain::{EntryKind, PeriodKind, RollKind},
    export::{ExportFilter, parse_bound},
    lookup::{PaymentView, Subject},
};

/// Who may call which ledger RPC.
pub fn policy() -> Policy {
    let service = <LedgerServiceServer<LedgerApi> as tonic::server::NamedService>::NAME;
    let real_name: &'static [Role] = &[
        Role::Gateway,
        Role::Admin,
        Role::Inspector,
        Role::Department,
        Role::Town,
        Role::Auditor,
    ];
    let feeds: &'static [Role] = &[Role::Provincial, Role::Admin, Role::Inspector];
    // Who runs the cross-checks and decides about their findings.
    let checkers: &'static [Role] = &[Role::Admin, Role::Inspector];
    Policy::new()
        .rule(service, "ListPrograms", Access::Public)
        .rule(service, "VillageDisclosure", Access::Public)
        .rule(service, "Totals", Access::Public)
        .rule(
            service,
            "ImportRoll",
            Access::Roles(&[Role::Admin, Role::Department]),
        )
        .long_running(service, "ImportRoll")
        // whistle shows a report subject's payments with the reader's own
        // token (forwarded), never with its service token.
        .rule(service, "PersonPayments", Access::Roles(real_name))
        .rule(service, "HouseholdPayments", Access::Roles(real_name))
        .rule(service, "ExportPayments", Access::Roles(feeds))
        .rule(
            service,
            "WatchEvents",
            Access::RolesOrServices(feeds, &["notify"]),
        )
        .rule(service, "RunChecks", Access::Roles(checkers))
        .long_running(service, "RunChecks")
        .rule(
            service,
            "ListFindings",
            Access::Roles(&[
                Role::Admin,
                Role::Inspector,
                Role::Auditor,
                Role::Town,
                Role::Department,
            ]),
        )
        .rule(service, "DismissFinding", Access::Roles(checkers))
        .rule(service, "OpenFindingAsReport", Access::Roles(checkers))
        .rule(
            service,
            "GetCheckRules",
            Access::Roles(&[Role::Admin, Role::Inspector, Role::Auditor]),
        )
        .rule(service, "SetCheckRules", Access::Roles(checkers))
}

/// A finding as staff read it.
fn finding(row: FindingRow, rules: &crate::checks::rules::RuleSet) -> pb::Finding {
    let rule_name = RuleId::parse(&row.rule_id)
        .and_then(|id| rules.rules.iter().find(|r| r.id == id))
        .map(|r| r.name.clone())
        .unwrap_or_default();
    pb::Finding {
        id: row.id,
        rule_name,
        name_masked: row.evidence_str("name"),
        id_number_masked: row.evidence_str("id_number"),
        evidence_json: serde_json::to_string(&row.evidence.0).unwrap_or_default(),
        rule_id: row.rule_id,
        severity: row.severity,
        state: row.state,
        person_key: hex::encode(&row.person_key),
        household_code: row.household_code,
        village_code: row.village_code,
        town_code: row.town_code,
        program_code: row.program_code,
        period: row.period,
        amount_fen: row.amount_fen,
        found_at: Some(timestamp(row.found_at)),
        closed_at: row.closed_at.map(timestamp),
        decided_by: row.decided_by.unwrap_or_default(),
        reason: row.reason.unwrap_or_default(),
        report_number: row.report_number.unwrap_or_default(),
    }
}

fn roll_kind(kind: i32) -> RollKind {
    match pb::RollKind::try_from(kind) {
        Ok(pb::RollKind::Record) => RollKind::Record,
        _ => RollKind::PreCheck,
    }
}

fn roll_kind_pb(kind: RollKind) -> pb::RollKind {
    match kind {
        RollKind::PreCheck => pb::RollKind::PreCheck,
        RollKind::Record => pb::RollKind::Record,
    }
}

/// The tonic service over [`Ledger`].
#[derive(Clone)]
pub struct LedgerApi {
    ledger: Ledger,
    /// One staff-started full run at a time in this process: a second would only wait for
    /// the first's lock and repeat it, a task held per call.
    full_run: std::sync::Arc<tokio::sync::Semaphore>,
}

impl LedgerApi {
    pub fn new(ledger: Ledger) -> Self {
        Self {
            ledger,
            full_run: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    pub fn into_server(self) -> LedgerServiceServer<Self> {
        LedgerServiceServer::new(self).max_encoding_message_size(64 * 1024 * 1024)
    }
}

fn payment(p: PaymentView) -> pb::Payment {
    pb::Payment {
        id: p.id,
        person_key: p.person_key,
        name_masked: p.name_masked,
        id_number_masked: p.id_masked,
        household_code: p.household_code,
        village_code: p.village_code,
        program_code: p.program_code,
        program_name: p.program_name,
        period: p.period,
        amount_fen: p.amount_fen,
        kind: match p.kind {
            EntryKind::Payment => pb::PaymentKind::Payment,
            EntryKind::Reversal => pb::PaymentKind::Reversal,
        } as i32,
        related_payment_id: p.related_id.unwrap_or(0),
        bank_account_masked: p.bank_masked,
        roll_id: p.roll_id,
        posted_at: Some(timestamp(p.posted_at)),
    }
}

/// A department officer sees only their own department's programs.
fn department(caller: &huimin_kit::auth::Caller) -> Option<&str> {
    if caller.role == Role::Department {
        caller.scope.as_deref()
    } else {
        None
    }
}

impl LedgerApi {
    /// A page of a person's or household's payments, once the caller is
    /// allowed and, for staff, the read is recorded.
    async fn payments_page(
        &self,
        caller: &huimin_kit::auth::Caller,
        openid: &str,
        subject: &Subject,
        page: Option<huimin_proto::common::v1::PageRequest>,
        method: &str,
    ) -> Result<Response<pb::PaymentsPage>, Status> {
        self.ledger.authorize(caller, openid, subject).await?;
        self.ledger
            .record_staff_read(caller, subject, method)
            .await?;
        let page = page.unwrap_or_default();
        let result = self
            .ledger
            .payments(
                subject,
                &page.page_token,
                page.page_size,
                department(caller),
            )
            .await?;
        Ok(Response::new(pb::PaymentsPage {
            // The page is shared with the cache: its rows are copied out once.
            payments: result.payments.iter().cloned().map(payment).collect(),
            next_page_token: result.next_page_token.clone(),
        }))
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn list_programs(
        &self,
        _request: Request<pb::ListProgramsRequest>,
    ) -> Result<Response<pb::ListProgramsResponse>, Status> {
        let mut programs: Vec<_> = self
            .ledger
            .programs()
            .await?
            .into_values()
            .filter(|p| p.active)
            .collect();
        programs.sort_by(|a, b| a.code.cmp(&b.code));
        let programs = programs
            .into_iter()
            .map(|p| pb::Program {
                period_kind: match p.period_kind {
                    PeriodKind::Monthly => pb::PeriodKind::Monthly,
                    PeriodKind::Quarterly => pb::PeriodKind::Quarterly,
                    PeriodKind::Yearly => pb::PeriodKind::Yearly,
                    PeriodKind::OneOff => pb::PeriodKind::OneOff,
                } as i32,
                code: p.code,
                name: p.name,
                department: p.department,
                standard_fen: p.standard_fen,
                ceiling_fen: p.ceiling_fen,
                per_household: p.per_household,
                legal_basis: p.legal_basis,
                eligibility: p.eligibility,
            })
            .collect();
        Ok(Response::new(pb::ListProgramsResponse { programs }))
    }

    async fn import_roll(
        &self,
        request: Request<Streaming<pb::ImportRollChunk>>,
    ) -> Result<Response<pb::ImportRollResponse>, Status> {
        let caller = caller(&request)?.clone();
        let ((file_name, kind), bytes) = huimin_kit::upload::collect(
            request.into_inner(),
            self.ledger.imports.max_bytes,
            |c: pb::ImportRollChunk| ((c.file_name, c.kind), c.data),
        )
        .await?;
        let outcome = self
            .ledger
            .import_roll(&caller, &file_name, roll_kind(kind), bytes)
            .await?;
        Ok(Response::new(pb::ImportRollResponse {
            roll_id: outcome.roll_id,
            created: outcome.created,
            payments: outcome.payments,
            reversals: outcome.reversals,
            total_fen: outcome.total_fen,
            kind: roll_kind_pb(outcome.kind) as i32,
        }))
    }

    async fn person_payments(
        &self,
        request: Request<pb::PersonPaymentsRequest>,
    ) -> Result<Response<pb::PaymentsPage>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let key = PersonKey::from_hex(&request.person_key)
            .map_err(|_| LedgerError::invalid("person_key", "person_key 应为64位十六进制"))?;
        let subject = Subject::Person(key);
        self.payments_page(
            &caller,
            &request.openid,
            &subject,
            request.page,
            "PersonPayments",
        )
        .await
    }

    async fn household_payments(
        &self,
        request: Request<pb::HouseholdPaymentsRequest>,
    ) -> Result<Response<pb::PaymentsPage>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let code = non_empty(&request.household_code)
            .ok_or_else(|| LedgerError::invalid("household_code", "请提供户编号"))?;
        let subject = Subject::Household(code);
        self.payments_page(
            &caller,
            &request.openid,
            &subject,
            request.page,
            "HouseholdPayments",
        )
        .await
    }

    async fn village_disclosure(
        &self,
        request: Request<pb::VillageDisclosureRequest>,
    ) -> Result<Response<pb::VillageDisclosureResponse>, Status> {
        let request = request.into_inner();
        let page = request.page.unwrap_or_default();
        let disclosure = self
            .ledger
            .disclosure(
                &request.village_code,
                &request.program_code,
                &request.period,
                &page.page_token,
                page.page_size,
            )
            .await?;
        Ok(Response::new(pb::VillageDisclosureResponse {
            village_code: request.village_code,
            program_code: request.program_code,
            program_name: disclosure.program_name.clone(),
            period: request.period,
            entries: disclosure
                .entries
                .iter()
                .map(|e| pb::DisclosureEntry {
                    name_masked: e.name_masked.clone(),
                    id_number_masked: e.id_masked.clone(),
                    household_code: e.household_code.clone(),
                    amount_fen: e.amount_fen,
                })
                .collect(),
            next_page_token: disclosure.next_page_token.clone(),
            total_persons: disclosure.total_persons,
            total_fen: disclosure.total_fen,
        }))
    }

    async fn totals(
        &self,
        request: Request<pb::TotalsRequest>,
    ) -> Result<Response<pb::TotalsResponse>, Status> {
        let request = request.into_inner();
        let group =
            match pb::GroupBy::try_from(request.group_by).unwrap_or(pb::GroupBy::Unspecified) {
                pb::GroupBy::Town => "town",
                pb::GroupBy::Village => "village",
                pb::GroupBy::Program => "program",
                pb::GroupBy::Year => "year",
                pb::GroupBy::Unspecified => "",
            };
        let year = (request.year != 0).then_some(request.year);
        let totals = self
            .ledger
            .totals(
                group,
                non_empty(&request.town_code).as_deref(),
                non_empty(&request.village_code).as_deref(),
                non_empty(&request.program_code).as_deref(),
                year,
            )
            .await?;
        Ok(Response::new(pb::TotalsResponse {
            totals: totals
                .into_iter()
                .map(|t| pb::Total {
                    key: t.key,
                    payments: u64::try_from(t.payments).unwrap_or(0),
                    persons: u64::try_from(t.persons).unwrap_or(0),
                    amount_fen: t.amount_fen,
                })
                .collect(),
        }))
    }

    type ExportPaymentsStream = ExportStream<pb::ExportPaymentsResponse>;

    async fn export_payments(
        &self,
        request: Request<pb::ExportPaymentsRequest>,
    ) -> Result<Response<Self::ExportPaymentsStream>, Status> {
        let request = request.into_inner();
        let filter = ExportFilter {
            period_from: parse_bound(&request.period_from, false)?,
            period_to: parse_bound(&request.period_to, true)?,
            program: non_empty(&request.program_code),
            town: non_empty(&request.town_code),
        };
        let source = PaymentExport {
            ledger: self.ledger.clone(),
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
        let expand = std::sync::Arc::new(crate::events::PaymentsPosted);
        Ok(Response::new(outbox::watch_expanding(
            self.ledger.pool.clone(),
            request.into_inner(),
            expand,
        )))
    }

    type RunChecksStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::RunChecksProgress, Status>> + Send + 'static>,
    >;

    async fn run_checks(
        &self,
        request: Request<pb::RunChecksRequest>,
    ) -> Result<Response<Self::RunChecksStream>, Status> {
        let caller = caller(&request)?.clone();
        let ledger = self.ledger.clone();
        let permit = self
            .full_run
            .clone()
            .try_acquire_owned()
            .map_err(|_| LedgerError::RunChecksBusy)?;
        let (tx, rx) = tokio::sync::mpsc::channel(32);
        // The run goes on if the caller goes away: it is one transaction either way.
        tokio::spawn(async move {
            let _permit = permit;
            let result = async {
                audit_run(&ledger, &caller).await?;
                let synced = ledger.sync_facts().await?;
                let progress = tx.clone();
                let outcome = ledger
                    .run_checks(Scope::Full, &caller.sub, move |done| {
                        let _ = progress.try_send(Ok(pb::RunChecksProgress {
                            rule_id: done.rule_id.to_owned(),
                            rules_done: done.done as u32,
                            rules_total: done.total as u32,
                            rule_findings: done.findings,
                            rule_elapsed_ms: done.elapsed_ms as i64,
                            outcome: None,
                        }));
                    })
                    .await?;
                Ok::<_, LedgerError>(pb::RunChecksProgress {
                    outcome: Some(pb::RunChecksOutcome {
                        run_id: outcome.run_id,
                        found: outcome.found,
                        reopened: outcome.reopened,
                        closed: outcome.closed,
                        elapsed_ms: outcome.elapsed_ms as i64,
                        facts_synced: synced.facts,
                    }),
                    ..Default::default()
                })
            }
            .await;
            let _ = tx.send(result.map_err(Status::from)).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn list_findings(
        &self,
        request: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::ListFindingsResponse>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let page = request.page.unwrap_or_default();
        let filter = FindingFilter {
            rule_id: non_empty(&request.rule_id),
            town_code: non_empty(&request.town_code),
            village_code: non_empty(&request.village_code),
            program_code: non_empty(&request.program_code),
            severity: non_empty(&request.severity),
            state: non_empty(&request.state),
        };
        let found = self
            .ledger
            .list_findings(&caller, filter, &page.page_token, page.page_size)
            .await?;
        let rules = self.ledger.check_rules().await?;
        Ok(Response::new(pb::ListFindingsResponse {
            findings: found
                .findings
                .into_iter()
                .map(|row| finding(row, &rules))
                .collect(),
            next_page_token: found.next_page_token,
            counts: found
                .counts
                .into_iter()
                .map(|(rule_id, count)| pb::RuleCount { rule_id, count })
                .collect(),
        }))
    }

    async fn dismiss_finding(
        &self,
        request: Request<pb::DismissFindingRequest>,
    ) -> Result<Response<pb::Finding>, Status> {
        let caller = caller(&request)?.clone();
        let request = request.into_inner();
        let row = self
            .ledger
            .dismiss_finding(&caller, request.finding_id, &request.reason)
            .await?;
        let rules = self.ledger.check_rules().await?;
        Ok(Response::new(finding(row, &rules)))
    }

    async fn open_finding_as_report(
        &self,
        request: Request<pb::OpenFindingAsReportRequest>,
    ) -> Result<Response<pb::Finding>, Status> {
        let caller = caller(&request)?.clone();
        let id = request.into_inner().finding_id;
        let row = self.ledger.report_finding(&caller, id).await?;
        let rules = self.ledger.check_rules().await?;
        Ok(Response::new(finding(row, &rules)))
    }

    async fn get_check_rules(
        &self,
        request: Request<pb::GetCheckRulesRequest>,
    ) -> Result<Response<pb::CheckRules>, Status> {
        let caller = caller(&request)?.clone();
        let (json, version) = self.ledger.get_check_rules(&caller).await?;
        Ok(Response::new(pb::CheckRules { json, version }))
    }

    async fn set_check_rules(
        &self,
        request: Request<pb::CheckRules>,
    ) -> Result<Response<pb::CheckRules>, Status> {
        let caller = caller(&request)?.clone();
        let (json, version) = self
            .ledger
            .set_check_rules(&caller, &request.into_inner().json)
            .await?;
        Ok(Response::new(pb::CheckRules { json, version }))
    }
}

/// The payments one export reads.
struct PaymentExport {
    ledger: Ledger,
    filter: ExportFilter,
}

impl keyset::Export for PaymentExport {
    type Row = PaymentView;
    type Error = LedgerError;
    type Message = pb::ExportPaymentsResponse;
    const DEFAULT_BATCH: u32 = 1000;
    const MAX_BATCH: u32 = 10_000;

    fn id(row: &PaymentView) -> i64 {
        row.id
    }

    fn batch(&self, after: i64, size: i64) -> keyset::Batch<'_, Self> {
        Box::pin(self.ledger.export_batch(&self.filter, after, size))
    }

    fn message(rows: Vec<PaymentView>, cursor: i64) -> pb::ExportPaymentsResponse {
        pb::ExportPaymentsResponse {
            payments: rows.into_iter().map(payment).collect(),
            cursor,
        }
    }
}
