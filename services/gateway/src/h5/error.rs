//! The one error type of the H5 pages, rendered as a short Chinese page.
//! Internal text (a peer's status detail, a template error) is logged by
//! code only, never shown; what a service says about bad input is shown,
//! because the services write those messages for citizens.

use axum::{
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum H5Error {
    /// Bad input, said in Chinese to the citizen.
    #[error("invalid input")]
    Invalid(String),
    /// The form's CSRF token is missing or not this session's.
    #[error("csrf token refused")]
    Csrf,
    /// The OAuth callback did not match the flow this browser started.
    #[error("oauth flow refused")]
    OAuth,
    /// Over an abuse limit; the limiter's polite message.
    #[error("limited")]
    Limited(String),
    #[error("not found")]
    NotFound,
    /// A peer or WeChat failed; details are in the log.
    #[error("unavailable")]
    Unavailable,
}

impl H5Error {
    /// A peer's answer: its message for the citizen when it is about the
    /// input, a generic apology when the service failed.
    pub fn from_status(peer: &'static str, status: &tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::ResourceExhausted => Self::Invalid(status.message().to_owned()),
            Code::NotFound => Self::Invalid(if status.message().is_empty() {
                "没有找到".to_owned()
            } else {
                status.message().to_owned()
            }),
            code => {
                // The code only: a message may quote what was asked.
                tracing::warn!(peer, ?code, "peer call failed");
                Self::Unavailable
            }
        }
    }

    fn parts(&self) -> (StatusCode, &str, String) {
        match self {
            Self::Invalid(message) => (StatusCode::BAD_REQUEST, "输入有误", message.clone()),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "页面已过期",
                "请返回上一页，刷新后重新提交。".to_owned(),
            ),
            Self::OAuth => (
                StatusCode::FORBIDDEN,
                "登录未完成",
                "请从公众号菜单重新打开本页面。".to_owned(),
            ),
            Self::Limited(message) => {
                (StatusCode::TOO_MANY_REQUESTS, "请稍后再试", message.clone())
            }
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "没有找到",
                "您要找的内容不存在。".to_owned(),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用",
                "系统繁忙，请稍后再试。".to_owned(),
            ),
        }
    }
}

impl IntoResponse for H5Error {
    fn into_response(self) -> Response {
        let (status, title, message) = self.parts();
        let page = super::public::ErrorPage {
            title,
            message: &message,
        };
        let body = askama::Template::render(&page).unwrap_or_else(|_| message.clone());
        (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
    }
}
