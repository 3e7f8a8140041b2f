//! Re-sealing ID numbers stored before they were bound to their person key
//! (`persons.id_seal = 1`): `huimin keys reseal`, safe to run while the
//! services serve and to run again (it takes what is left, a batch at a time).

use crate::{
    Identity,
    keys::{IdSeal, SealError},
};
use huimin_kit::pii::PersonKey;

/// Rows re-sealed per transaction.
const BATCH: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(
        "person id {id}: its stored ID number does not open with this key ({source}); nothing after it was changed"
    )]
    DoesNotOpen { id: i64, source: SealError },
    #[error("person id {id}: its person key is not 32 bytes")]
    BadPersonKey { id: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Identity {
    /// How many stored ID numbers are still sealed the legacy way.
    pub async fn legacy_sealed_count(&self) -> Result<u64, sqlx::Error> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM persons WHERE id_seal = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Re-seals every legacy row; returns how many. `progress` is told the
    /// running count after each batch.
    pub async fn reseal_id_numbers(
        &self,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ResealError> {
        let mut done = 0u64;
        loop {
            let mut tx = self.pool.begin().await?;
            let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                "SELECT id, person_key, id_number_enc FROM persons WHERE id_seal = 1
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            )
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for (id, key, sealed) in &rows {
                let key = <[u8; 32]>::try_from(key.as_slice())
                    .map_err(|_| ResealError::BadPersonKey { id: *id })?;
                let person = PersonKey::from_bytes(key);
                let number = self
                    .pii
                    .sealer
                    .open_id(sealed, &person, IdSeal::Legacy)
                    .map_err(|source| ResealError::DoesNotOpen { id: *id, source })?;
                sqlx::query("UPDATE persons SET id_number_enc = $2, id_seal = $3 WHERE id = $1")
                    .bind(id)
                    .bind(self.pii.sealer.seal_id(&number, &person))
                    .bind(IdSeal::Bound.column())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            done += rows.len() as u64;
            progress(done);
        }
    }
}
