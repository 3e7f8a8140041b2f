//! registry's error type and its one mapping to `tonic::Status`.

use huimin_kit::status::{self, FieldViolation};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request or a project file is wrong in ways the caller can fix.
    #[error("invalid argument: {message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    /// A project with this code exists already.
    #[error("already exists: {0}")]
    AlreadyExists(&'static str),
    /// The caller changed a version that is no longer the current one.
    #[error("stale version")]
    Stale,
    /// The change is not allowed in the project's state (e.g. an illegal
    /// status transition); the message names the states.
    #[error("failed precondition: {0}")]
    Precondition(String),
    /// identity could not be asked about divisions.
    #[error("identity unavailable: {0}")]
    IdentityUnavailable(tonic::Status),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RegistryError {
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self::Invalid {
            message: description.clone(),
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    /// Several problems at once; the message is the only one, or a count.
    pub fn invalid_all(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [only] => only.description.clone(),
            all => format!("项目信息有{}处错误", all.len()),
        };
        Self::Invalid {
            message,
            violations,
        }
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> Self {
        match huimin_kit::db::violated_constraint(&error) {
            Some("projects_code_key") => return Self::AlreadyExists("项目编号已存在"),
            Some("projects_disbursed_within_approved") => {
                return Self::invalid("disbursed_fen", "拨付金额不能超过批复金额");
            }
            _ => {}
        }
        if huimin_kit::db::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Internal(anyhow::Error::new(error).context("database"))
        }
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Invalid {
                message,
                violations,
            } => status::invalid_argument(message, &violations),
            RegistryError::NotFound(what) => Status::not_found(what),
            RegistryError::Forbidden(why) => Status::permission_denied(why),
            RegistryError::AlreadyExists(what) => Status::already_exists(what),
            RegistryError::Stale => Status::aborted("项目已被他人修改，请刷新后按最新版本重新提交"),
            RegistryError::Precondition(message) => Status::failed_precondition(message),
            RegistryError::IdentityUnavailable(error) => {
                status::peer_unavailable("identity", &error)
            }
            RegistryError::Unavailable(error) => status::database_unavailable(&error),
            RegistryError::Internal(error) => status::internal_error(&error),
        }
    }
}
