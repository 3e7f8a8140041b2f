//! The error core every service's error enum extends: the failures all services share
//! (a request the caller can fix, not found, forbidden, a duplicate, a peer or the database
//! down, an internal fault) and their one mapping to `tonic::Status`.
//!
//! A service's enum wraps [`CoreError`] in a `Core` variant beside its own variants and
//! calls [`extend_core_error!`](crate::extend_core_error) once, which writes the
//! conversions from `sqlx::Error` and `anyhow::Error` and the shared constructors
//! (`invalid`, `not_found`, ...). Its `From<…> for Status` stays one exhaustive `match`
//! whose `Core` arm is `core.into()`: what a client sees for the shared failures is decided
//! here, once, and internal or database text is logged, never sent.

use tonic::Status;

use crate::{
    problems::Report,
    status::{self, FieldViolation},
};

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The request (or an uploaded file) is wrong in ways the caller can fix.
    #[error("invalid argument: {message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    /// A row with this key exists already (found by the unique constraint's name).
    #[error("already exists: {0}")]
    AlreadyExists(&'static str),
    /// Another huimin service could not be asked (down, or refused our token).
    #[error("{peer} unavailable: {status}")]
    PeerUnavailable { peer: &'static str, status: Status },
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What the violation of one named constraint means to the caller. A service lists the
/// constraints its callers can break; any other violation stays INTERNAL.
#[derive(Debug, Clone, Copy)]
pub enum Violated {
    /// A unique key: ALREADY_EXISTS with this message.
    AlreadyExists(&'static str),
    /// A check a request can fail: INVALID_ARGUMENT naming the field.
    Invalid {
        field: &'static str,
        description: &'static str,
    },
}

/// Constraint names and what their violation means, for [`CoreError::database`].
pub type Constraints = &'static [(&'static str, Violated)];

impl CoreError {
    /// One problem with one field; the message is the problem.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self::Invalid {
            message: description.clone(),
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    /// A database error: a listed constraint's meaning, UNAVAILABLE when the database
    /// could not be reached, INTERNAL (logged with its text) for anything else.
    pub fn database(error: sqlx::Error, constraints: &[(&str, Violated)]) -> Self {
        let violated = crate::db::violated_constraint(&error)
            .and_then(|name| constraints.iter().find(|(known, _)| *known == name));
        match violated {
            Some((_, Violated::AlreadyExists(what))) => Self::AlreadyExists(what),
            Some((_, Violated::Invalid { field, description })) => {
                Self::invalid(field, *description)
            }
            None if crate::db::is_unavailable(&error) => Self::Unavailable(error),
            None => Self::Internal(anyhow::Error::new(error).context("database")),
        }
    }
}

impl From<sqlx::Error> for CoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::database(error, &[])
    }
}

impl From<Report> for CoreError {
    fn from(report: Report) -> Self {
        Self::Invalid {
            message: report.message,
            violations: report.violations,
        }
    }
}

impl From<CoreError> for Status {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Invalid {
                message,
                violations,
            } => status::invalid_argument(message, &violations),
            CoreError::NotFound(what) => Status::not_found(what),
            CoreError::Forbidden(why) => Status::permission_denied(why),
            CoreError::AlreadyExists(what) => Status::already_exists(what),
            CoreError::PeerUnavailable { peer, status } => status::peer_unavailable(peer, &status),
            CoreError::Unavailable(error) => status::database_unavailable(&error),
            CoreError::Internal(error) => status::internal_error(&error),
        }
    }
}

/// Makes a service's error enum an extension of [`CoreError`](crate::error::CoreError).
/// The enum must have a `Core(#[from] CoreError)` variant. Writes `From<sqlx::Error>`
/// (through the constraints given, if any), `From<anyhow::Error>`, `From<Report>` and the
/// shared constructors, so call sites read `LedgerError::forbidden("…")`.
#[macro_export]
macro_rules! extend_core_error {
    ($error:ident) => {
        $crate::extend_core_error!($error, &[]);
    };
    ($error:ident, $constraints:expr) => {
        impl From<::sqlx::Error> for $error {
            fn from(error: ::sqlx::Error) -> Self {
                Self::Core($crate::error::CoreError::database(error, $constraints))
            }
        }

        impl From<::anyhow::Error> for $error {
            fn from(error: ::anyhow::Error) -> Self {
                Self::Core($crate::error::CoreError::Internal(error))
            }
        }

        impl From<$crate::problems::Report> for $error {
            fn from(report: $crate::problems::Report) -> Self {
                Self::Core(report.into())
            }
        }

        #[allow(dead_code)]
        impl $error {
            /// One problem with one field; the message is the problem.
            pub fn invalid(field: &str, description: impl Into<String>) -> Self {
                Self::Core($crate::error::CoreError::invalid(field, description))
            }

            pub fn not_found(what: &'static str) -> Self {
                Self::Core($crate::error::CoreError::NotFound(what))
            }

            pub fn forbidden(why: &'static str) -> Self {
                Self::Core($crate::error::CoreError::Forbidden(why))
            }

            /// An unexpected failure: logged with its causes, sent as INTERNAL without them.
            pub fn internal(error: ::anyhow::Error) -> Self {
                Self::Core($crate::error::CoreError::Internal(error))
            }

            /// The peer service `peer` could not be asked.
            pub fn peer_unavailable(peer: &'static str, status: ::tonic::Status) -> Self {
                Self::Core($crate::error::CoreError::PeerUnavailable { peer, status })
            }
        }
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn internal_text_is_not_sent() {
        let status = Status::from(CoreError::Internal(anyhow::anyhow!("secret table xyz")));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("xyz"), "{}", status.message());
    }

    #[test]
    fn an_unreachable_database_is_unavailable() {
        let status = Status::from(CoreError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), Code::Unavailable);
    }

    #[test]
    fn an_unlisted_database_error_is_internal() {
        let status = Status::from(CoreError::database(
            sqlx::Error::RowNotFound,
            &[("t_key", Violated::AlreadyExists("已存在"))],
        ));
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn a_peer_refusal_is_unavailable_without_its_text() {
        let status = Status::from(CoreError::PeerUnavailable {
            peer: "identity",
            status: Status::permission_denied("token for ledger"),
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("token"));
    }
}
