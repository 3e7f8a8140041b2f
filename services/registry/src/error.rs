//! registry's error type: the kit core, registry's own failures, and its one mapping to
//! `tonic::Status`.

use huimin_kit::{
    error::{Constraints, CoreError, Violated},
    status::FieldViolation,
};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Invalid input, not found, forbidden, a duplicate code, identity or the database
    /// down, internal faults.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The caller changed a version that is no longer the current one.
    #[error("stale version")]
    Stale,
    /// The change is not allowed in the project's state (e.g. an illegal
    /// status transition); the message names the states.
    #[error("failed precondition: {0}")]
    Precondition(String),
}

/// The constraints a request can violate, and what each means to the caller.
const CONSTRAINTS: Constraints = &[
    (
        "projects_code_key",
        Violated::AlreadyExists("项目编号已存在"),
    ),
    (
        "projects_disbursed_within_approved",
        Violated::Invalid {
            field: "disbursed_fen",
            description: "拨付金额不能超过批复金额",
        },
    ),
];

huimin_kit::extend_core_error!(RegistryError, CONSTRAINTS);

impl RegistryError {
    /// Several problems at once; the message is the only one, or a count.
    pub fn invalid_all(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [only] => only.description.clone(),
            all => format!("项目信息有{}处错误", all.len()),
        };
        Self::Core(CoreError::Invalid {
            message,
            violations,
        })
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Core(core) => core.into(),
            RegistryError::Stale => Status::aborted("项目已被他人修改，请刷新后按最新版本重新提交"),
            RegistryError::Precondition(message) => Status::failed_precondition(message),
        }
    }
}
