//! whistle's error type and its one mapping to `tonic::Status`.

use huimin_kit::status::{self, FieldViolation};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum WhistleError {
    #[error("invalid argument: {message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    /// The workflow doesn't allow this step from the report's state.
    #[error("failed precondition: {0}")]
    NotAllowed(String),
    /// Too many wrong receipt codes from one client.
    #[error("throttled")]
    Throttled,
    /// identity could not be asked whether a real-name reporter is bound.
    #[error("identity unavailable: {0}")]
    IdentityUnavailable(tonic::Status),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl WhistleError {
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::Invalid {
            message: description.to_owned(),
            violations: vec![FieldViolation::new(field, description)],
        }
    }
}

impl From<sqlx::Error> for WhistleError {
    fn from(error: sqlx::Error) -> Self {
        if huimin_kit::db::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Internal(anyhow::Error::new(error).context("database"))
        }
    }
}

impl From<object_store::Error> for WhistleError {
    fn from(error: object_store::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("attachment store"))
    }
}

impl From<WhistleError> for Status {
    fn from(error: WhistleError) -> Self {
        match error {
            WhistleError::Invalid {
                message,
                violations,
            } => status::invalid_argument(message, &violations),
            WhistleError::NotFound(what) => Status::not_found(what),
            WhistleError::Forbidden(why) => Status::permission_denied(why),
            WhistleError::NotAllowed(why) => Status::failed_precondition(why),
            WhistleError::Throttled => Status::resource_exhausted("查询次数过多，请一小时后再试"),
            WhistleError::IdentityUnavailable(error) => {
                status::peer_unavailable("identity", &error)
            }
            WhistleError::Unavailable(error) => status::database_unavailable(&error),
            WhistleError::Internal(error) => status::internal_error(&error),
        }
    }
}
