//! identity's error type and its one mapping to `tonic::Status`.

use huimin_kit::status::{self, FieldViolation};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request (or an imported file) is wrong in ways the caller can fix.
    #[error("invalid argument: {message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Too many failed bind attempts from one openid.
    #[error("too many failed attempts")]
    Throttled,
    /// An openid has bound as many persons as it may.
    #[error("binding limit reached")]
    BindingLimit,
    #[error("unauthenticated")]
    BadCredentials,
    /// Too many failed logins for a username or from a source (crate::login).
    #[error("login throttled")]
    LoginThrottled,
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IdentityError {
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::Invalid {
            message: description.to_owned(),
            violations: vec![FieldViolation::new(field, description)],
        }
    }
}

impl From<sqlx::Error> for IdentityError {
    fn from(error: sqlx::Error) -> Self {
        if huimin_kit::db::is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Internal(anyhow::Error::new(error).context("database"))
        }
    }
}

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Invalid {
                message,
                violations,
            } => status::invalid_argument(message, &violations),
            IdentityError::NotFound(what) => Status::not_found(what),
            IdentityError::Throttled => Status::resource_exhausted("尝试次数过多，请一小时后再试"),
            IdentityError::BindingLimit => Status::failed_precondition(format!(
                "每个微信号最多绑定{}人",
                crate::bindings::MAX_BINDINGS
            )),
            IdentityError::BadCredentials => Status::unauthenticated("用户名或密码错误"),
            IdentityError::LoginThrottled => {
                Status::resource_exhausted("登录失败次数过多，请稍后再试")
            }
            IdentityError::Forbidden(why) => Status::permission_denied(why),
            IdentityError::Unavailable(error) => status::database_unavailable(&error),
            IdentityError::Internal(error) => status::internal_error(&error),
        }
    }
}
