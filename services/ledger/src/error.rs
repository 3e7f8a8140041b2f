//! ledger's error type: the kit core and ledger's own failures, and its one
//! mapping to `tonic::Status`.

use huimin_kit::error::CoreError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Invalid requests or roll files, not found, forbidden, identity or the database
    /// down, internal faults.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The caller's roll rows failed the register check too often today.
    #[error("too many failed register checks")]
    RegisterChecksExhausted,
    /// A full cross-check run started by staff is still going in this process.
    #[error("a full cross-check run is already going")]
    RunChecksBusy,
}

huimin_kit::extend_core_error!(LedgerError);

impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Core(core) => core.into(),
            LedgerError::RegisterChecksExhausted => Status::resource_exhausted(
                "花名册中与户籍登记不符的记录过多，请24小时后再试或联系管理员",
            ),
            LedgerError::RunChecksBusy => {
                Status::resource_exhausted("已有一次全量比对正在进行，请等它结束后再发起")
            }
        }
    }
}
