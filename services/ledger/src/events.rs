//! ledger's transactional outbox (see [`huimin_kit::outbox`] for why writers
//! take a lock): `payment.posted` and `roll.imported`.

use huimin_kit::outbox::Outbox;
use sqlx::PgConnection;

use crate::LedgerError;

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
