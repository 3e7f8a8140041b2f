//! What whistle asks its peers about a new report: identity, whether a
//! real-name reporter is bound; ledger, the public facts the first reader needs.

use huimin_proto::ledger::v1::{GroupBy, TotalsRequest};

use crate::{Whistle, error::WhistleError, triage::Subject};

impl Whistle {
    /// A real-name report comes from an openid bound to a registered person.
    pub(super) async fn check_bound(&self, openid: &str) -> Result<(), WhistleError> {
        let request = huimin_proto::identity::v1::ResolveOpenIdRequest {
            openid: openid.to_owned(),
        };
        let resolved = self
            .identity
            .call(|mut identity| {
                let request = request.clone();
                async move { identity.resolve_open_id(request).await }
            })
            .await;
        match resolved {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Err(WhistleError::invalid(
                "openid",
                "实名举报须先绑定本人身份信息，也可选择匿名举报",
            )),
            Err(status) => Err(WhistleError::peer_unavailable("identity", status)),
        }
    }

    /// What the ledger publishes about the subject (the village's totals for
    /// the program), for the first reader; empty when ledger does not answer in
    /// time (triage never waits on it for long). A named person's payments are
    /// not stored here: staff read them when they open the report, with their
    /// own token and scope, and ledger records the read (see `crate::facts`).
    pub(super) async fn ledger_facts(&self, subject: &Subject) -> serde_json::Value {
        let ledger = &self.ledger;
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
        facts.into()
    }
}
