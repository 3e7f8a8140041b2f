//! identity's error type: the kit core, identity's own failures (throttles, binding limits,
//! credentials), and its one mapping to `tonic::Status`.

use huimin_kit::error::CoreError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Invalid requests or files, not found, forbidden, the database down, internal faults.
    #[error(transparent)]
    Core(#[from] CoreError),
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
}

huimin_kit::extend_core_error!(IdentityError);

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Core(core) => core.into(),
            IdentityError::Throttled => Status::resource_exhausted("尝试次数过多，请一小时后再试"),
            IdentityError::BindingLimit => Status::failed_precondition(format!(
                "每个微信号最多绑定{}人",
                crate::bindings::MAX_BINDINGS
            )),
            IdentityError::BadCredentials => Status::unauthenticated("用户名或密码错误"),
            IdentityError::LoginThrottled => {
                Status::resource_exhausted("登录失败次数过多，请稍后再试")
            }
        }
    }
}
