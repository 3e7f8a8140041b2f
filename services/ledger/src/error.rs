//! ledger's error type and its one mapping to `tonic::Status`.

use huimin_kit::status::{self, FieldViolation};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The request or a roll file is wrong in ways the caller can fix.
    #[error("invalid argument: {message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    /// The caller's roll rows failed the register check too often today.
    #[error("too many failed register checks")]
    RegisterChecksExhausted,
    /// identity could not be asked (down, or refused our token).
    #[error("identity unavailable: {0}")]
    IdentityUnavailable(tonic::Status),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl LedgerError {
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::Invalid {
            message: description.to_owned(),
            violations: vec![FieldViolation::new(field, description)],
        }
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(error: sqlx::Error) -> Self {
        if huimin_kit::db::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Internal(anyhow::Error::new(error).context("database"))
        }
    }
}

impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Invalid {
                message,
                violations,
            } => status::invalid_argument(message, &violations),
            LedgerError::NotFound(what) => Status::not_found(what),
            LedgerError::Forbidden(why) => Status::permission_denied(why),
            LedgerError::RegisterChecksExhausted => Status::resource_exhausted(
                "花名册中与户籍登记不符的记录过多，请24小时后再试或联系管理员",
            ),
            LedgerError::IdentityUnavailable(error) => status::peer_unavailable("identity", &error),
            LedgerError::Unavailable(error) => status::database_unavailable(&error),
            LedgerError::Internal(error) => status::internal_error(&error),
        }
    }
}
