//! What a roll import tells its caller about rows the population register
//! did not confirm, and the per-caller limit and record of such rows: an
//! import must not be a way to look persons up for staff who may not.

use huimin_kit::auth::{Caller, Role};
use huimin_proto::identity::v1::CheckOutcome;

use crate::{Ledger, LedgerError};

/// The one reason given to callers without person-lookup rights.
pub const NOT_AS_REGISTERED: &str = "与户籍登记不符";
/// The column that one reason is reported under: naming the column that
/// failed (name, ID number or village) would tell the reasons apart again.
const REGISTER_COLUMN: &str = "户籍核验";

/// Why the register did not confirm a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NameMismatch,
    NotRegistered,
    InvalidIdNumber,
    WrongVillage,
}

impl Refusal {
    pub fn of(outcome: CheckOutcome) -> Option<Self> {
        match outcome {
            CheckOutcome::Match => None,
            CheckOutcome::NameMismatch => Some(Refusal::NameMismatch),
            CheckOutcome::Unknown => Some(Refusal::NotRegistered),
            CheckOutcome::InvalidIdNumber | CheckOutcome::Unspecified => {
                Some(Refusal::InvalidIdNumber)
            }
        }
    }

    /// The column and message a row's problem is reported with. Only staff
    /// who may read a person's record (identity's `LookupPerson`) learn which
    /// part of the row the register disagrees with.
    pub fn reported(self, role: Role) -> (&'static str, &'static str) {
        if !may_look_persons_up(role) {
            return (REGISTER_COLUMN, NOT_AS_REGISTERED);
        }
        match self {
            Refusal::NameMismatch => ("姓名", "姓名与身份证号登记信息不符"),
            Refusal::NotRegistered => ("身份证号", "该身份证号未在本县户籍信息中登记"),
            Refusal::InvalidIdNumber => ("身份证号", "身份证号无效"),
            Refusal::WrongVillage => ("村代码", "村代码与户籍登记的村不符"),
        }
    }
}

/// The roles identity lets read a person's record (its `LookupPerson`
/// rule): a department officer is not one of them.
fn may_look_persons_up(role: Role) -> bool {
    matches!(
        role,
        Role::Admin | Role::Inspector | Role::Town | Role::Auditor
    )
}

impl Ledger {
    /// Refuses an import before the register is asked if its caller's rows
    /// failed the register check too often in the last 24 hours.
    pub(super) async fn refuse_if_probing(&self, caller: &Caller) -> Result<(), LedgerError> {
        let failed: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(failures), 0) FROM register_check_failures
             WHERE staff = $1 AND at > now() - interval '1 day'",
        )
        .bind(&caller.sub)
        .fetch_one(&self.pool)
        .await?;
        if failed >= self.register_failures_per_day {
            tracing::warn!(
                failed,
                "roll import refused: too many failed register checks"
            );
            return Err(LedgerError::RegisterChecksExhausted);
        }
        Ok(())
    }

    /// Records how many of an import's rows the register did not confirm.
    pub(super) async fn record_register_failures(
        &self,
        caller: &Caller,
        digest: &[u8],
        failures: usize,
    ) -> Result<(), LedgerError> {
        if failures == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO register_check_failures (staff, role, failures, file_sha256)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&caller.sub)
        .bind(caller.role.as_str())
        .bind(i32::try_from(failures).unwrap_or(i32::MAX))
        .bind(digest)
        .execute(&self.pool)
        .await?;
        tracing::info!(failures, "failed register checks recorded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_department_officer_gets_one_reason_for_every_refusal() {
        let all = [
            Refusal::NameMismatch,
            Refusal::NotRegistered,
            Refusal::InvalidIdNumber,
            Refusal::WrongVillage,
        ];
        assert!(
            all.iter()
                .all(|r| r.reported(Role::Department) == (REGISTER_COLUMN, NOT_AS_REGISTERED))
        );
        assert_eq!(Refusal::WrongVillage.reported(Role::Admin).0, "村代码");
    }
}
