//! A named person's payments, shown with a report only as the staff member opening it may
//! read them: whistle asks ledger with the reader's own authorization, so ledger applies
//! their role and scope and records the read as theirs.
//!
//! They used to be fetched at triage with whistle's service token and stored in the report,
//! where any staff member who could see the report (town officers included) read a person's
//! payments with no staff read recorded anywhere.

use huimin_proto::ledger::v1::PersonPaymentsRequest;
use tonic::metadata::{Ascii, MetadataValue};

use crate::Whistle;

impl Whistle {
    /// The payments of `person_key` as `authorization`'s holder may read them; `None` when
    /// ledger refuses (out of their scope) or does not answer.
    pub async fn payments_for_reader(
        &self,
        authorization: &MetadataValue<Ascii>,
        person_key: &str,
    ) -> Option<serde_json::Value> {
        let request = PersonPaymentsRequest {
            person_key: person_key.to_owned(),
            ..Default::default()
        };
        let answer = self
            .ledger
            .call(|mut ledger| {
                let mut request = tonic::Request::new(request.clone());
                // The peer's own service token is added only when a call carries none.
                request
                    .metadata_mut()
                    .insert("authorization", authorization.clone());
                async move { ledger.person_payments(request).await }
            })
            .await;
        match answer {
            Ok(page) => Some(
                page.into_inner()
                    .payments
                    .into_iter()
                    .map(|p| serde_json::json!({"program": p.program_code, "period": p.period, "amount_fen": p.amount_fen, "kind": p.kind}))
                    .collect::<Vec<_>>()
                    .into(),
            ),
            Err(status) => {
                tracing::info!(code = ?status.code(), "subject's payments not shown to this reader");
                None
            }
        }
    }
}
