//! Subsidy programs (惠民政策) as the ledger reads them.

use std::collections::HashMap;

use crate::{Ledger, LedgerError, domain::PeriodKind};

/// One program with its standard and ceiling per period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Program {
    pub code: String,
    pub name: String,
    pub department: String,
    pub period_kind: String,
    pub standard_fen: i64,
    pub ceiling_fen: i64,
    pub per_household: bool,
    pub legal_basis: String,
    pub eligibility: String,
    pub active: bool,
}

impl Program {
    pub fn kind(&self) -> Result<PeriodKind, LedgerError> {
        self.period_kind.parse().map_err(|_| {
            LedgerError::internal(anyhow::anyhow!(
                "program {} has a bad period kind",
                self.code
            ))
        })
    }
}

const PROGRAMS_CACHE: &str = "ledger:programs";
const PROGRAMS_TTL: std::time::Duration = std::time::Duration::from_secs(600);

impl Ledger {
    /// Every program, by code; from the cache when it has them.
    pub async fn programs(&self) -> Result<HashMap<String, Program>, LedgerError> {
        if let Some(programs) = self.cache.get_json::<Vec<Program>>(PROGRAMS_CACHE).await {
            return Ok(programs.into_iter().map(|p| (p.code.clone(), p)).collect());
        }
        let programs: Vec<Program> = sqlx::query_as(
            "SELECT code, name, department, period_kind, standard_fen, ceiling_fen, per_household,
                    legal_basis, eligibility, active
             FROM programs ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?;
        self.cache
            .set_json(PROGRAMS_CACHE, &programs, PROGRAMS_TTL)
            .await;
        Ok(programs.into_iter().map(|p| (p.code.clone(), p)).collect())
    }
}
