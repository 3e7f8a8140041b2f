//! Subsidy programs (惠民政策) as the ledger reads them.

use std::collections::HashMap;

use crate::{
    Ledger, LedgerError,
    cache_keys::{PROGRAMS, PROGRAMS_TTL},
    domain::PeriodKind,
};

/// One program with its standard and ceiling per period. Its period kind is read
/// strictly ([`crate::stored`]): an unknown kind fails the read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Program {
    pub code: String,
    pub name: String,
    pub department: String,
    pub period_kind: PeriodKind,
    pub standard_fen: i64,
    pub ceiling_fen: i64,
    pub per_household: bool,
    pub legal_basis: String,
    pub eligibility: String,
    pub active: bool,
}

impl Ledger {
    /// Every program, by code; from the cache when it has them.
    pub async fn programs(&self) -> Result<HashMap<String, Program>, LedgerError> {
        if let Some(programs) = self.cache.get_json::<Vec<Program>>(PROGRAMS).await {
            return Ok(programs.into_iter().map(|p| (p.code.clone(), p)).collect());
        }
        let programs: Vec<Program> = sqlx::query_as(
            "SELECT code, name, department, period_kind, standard_fen, ceiling_fen, per_household,
                    legal_basis, eligibility, active
             FROM programs ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?;
        self.cache.set_json(PROGRAMS, &programs, PROGRAMS_TTL).await;
        Ok(programs.into_iter().map(|p| (p.code.clone(), p)).collect())
    }
}
