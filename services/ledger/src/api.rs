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
    domain::{EntryKind, PeriodKind},
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
}

/// The tonic service over [`Ledger`].
#[derive(Clone)]
pub struct LedgerApi {
    ledger: Ledger,
}

impl LedgerApi {
    pub fn new(ledger: Ledger) -> Self {
        Self { ledger }
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
            payments: result.payments.into_iter().map(payment).collect(),
            next_page_token: result.next_page_token,
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
        let (file_name, bytes) = huimin_kit::upload::collect(
            request.into_inner(),
            self.ledger.imports.max_bytes,
            |c: pb::ImportRollChunk| (c.file_name, c.data),
        )
        .await?;
        let outcome = self.ledger.import_roll(&caller, &file_name, bytes).await?;
        Ok(Response::new(pb::ImportRollResponse {
            roll_id: outcome.roll_id,
            created: outcome.created,
            payments: outcome.payments,
            reversals: outcome.reversals,
            total_fen: outcome.total_fen,
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
            program_name: disclosure.program_name,
            period: request.period,
            entries: disclosure
                .entries
                .into_iter()
                .map(|e| pb::DisclosureEntry {
                    name_masked: e.name_masked,
                    id_number_masked: e.id_masked,
                    household_code: e.household_code,
                    amount_fen: e.amount_fen,
                })
                .collect(),
            next_page_token: disclosure.next_page_token,
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
