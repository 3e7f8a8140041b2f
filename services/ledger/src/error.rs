//! ledger's error type: the kit core (ledger has no failures of its own yet) and its one
//! mapping to `tonic::Status`.

use huimin_kit::error::CoreError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Invalid requests or roll files, not found, forbidden, identity or the database
    /// down, internal faults.
    #[error(transparent)]
    Core(#[from] CoreError),
}

huimin_kit::extend_core_error!(LedgerError);

impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Core(core) => core.into(),
        }
    }
}
