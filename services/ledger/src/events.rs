//! ledger's transactional outbox (see [`huimin_kit::outbox`] for why writers
//! take a lock): `payment.posted` and `roll.imported`.

use huimin_kit::outbox::Outbox;
use sqlx::PgConnection;

use crate::LedgerError;

/// The kind of a payment's event; a roll's are one span of them.
pub const PAYMENT_POSTED: &str = "payment.posted";

/// ledger's outbox; the key serializes ledger's writers (imports and seeding).
pub const OUTBOX: Outbox = Outbox::new(0x4c45_4447_4552); // "LEDGER"

/// Takes the writers' lock for the rest of the transaction.
pub async fn lock_writers(tx: &mut PgConnection) -> Result<(), LedgerError> {
    Ok(OUTBOX.lock_writers(tx).await?)
}

/// Appends one event to the outbox; call with the writers' lock held.
pub async fn append(
    tx: &mut PgConnection,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), LedgerError> {
    Ok(OUTBOX.append(tx, kind, payload, chrono::Utc::now()).await?)
}

/// Builds a roll's `payment.posted` events from its block of payments.
pub struct PaymentsPosted;

#[derive(serde::Deserialize)]
struct Span {
    first_payment_id: i64,
}

#[derive(sqlx::FromRow)]
struct Posted {
    id: i64,
    roll_id: i64,
    person_key: Vec<u8>,
    household_code: String,
    village_code: String,
    program_code: String,
    period: String,
    amount_fen: i64,
    kind: String,
}

impl huimin_kit::outbox::Expand for PaymentsPosted {
    fn expand<'a>(
        &'a self,
        pool: &'a sqlx::PgPool,
        kind: &'a str,
        payload: &'a serde_json::Value,
        skip: i64,
        limit: i64,
    ) -> futures::future::BoxFuture<'a, Result<Vec<serde_json::Value>, sqlx::Error>> {
        Box::pin(async move {
            if kind != PAYMENT_POSTED {
                return Err(sqlx::Error::Protocol(format!("no span of {kind} events")));
            }
            let span: Span = serde_json::from_value(payload.clone())
                .map_err(|e| sqlx::Error::Decode(e.into()))?;
            let from = span.first_payment_id + skip;
            let rows: Vec<Posted> = sqlx::query_as(
                "SELECT id, roll_id, person_key, household_code, village_code, program_code, period,
                        amount_fen, kind
                 FROM payments WHERE id >= $1 AND id < $2 ORDER BY id",
            )
            .bind(from)
            .bind(from + limit)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|p| {
                    serde_json::json!({
                        "payment_id": p.id, "roll_id": p.roll_id,
                        "person_key": hex::encode(p.person_key),
                        "household_code": p.household_code, "village_code": p.village_code,
                        "program_code": p.program_code, "period": p.period,
                        "amount_fen": p.amount_fen, "kind": p.kind,
                    })
                })
                .collect())
        })
    }
}
