//! whistle's error type: the kit core, whistle's own failures (workflow steps, receipt
//! throttling, the attachment store), and its one mapping to `tonic::Status`.

use huimin_kit::error::CoreError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum WhistleError {
    /// Invalid reports, not found, forbidden, identity or the database down, internal faults.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The workflow doesn't allow this step from the report's state.
    #[error("failed precondition: {0}")]
    NotAllowed(String),
    /// Too many wrong receipt codes from one client.
    #[error("throttled")]
    Throttled,
}

huimin_kit::extend_core_error!(WhistleError);

impl From<object_store::Error> for WhistleError {
    fn from(error: object_store::Error) -> Self {
        Self::internal(anyhow::Error::new(error).context("attachment store"))
    }
}

impl From<WhistleError> for Status {
    fn from(error: WhistleError) -> Self {
        match error {
            WhistleError::Core(core) => core.into(),
            WhistleError::NotAllowed(why) => Status::failed_precondition(why),
            WhistleError::Throttled => Status::resource_exhausted("查询次数过多，请一小时后再试"),
        }
    }
}
