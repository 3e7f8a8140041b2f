//! The H5 pages (我的补贴, 绑定, 村务公示, 项目, 政策, 我要举报, 举报进度),
//! server-rendered, reached from the conversation and the menu.
//!
//! Every page works without JavaScript and weighs a few kilobytes: the one
//! stylesheet is compiled into the binary, nothing comes from outside.
//! Each visitor gets a signed session cookie carrying a CSRF token; pages
//! that show or act on a citizen's own data also need the openid, which
//! only WeChat's silent OAuth flow (`oauth.rs`) puts there.

mod disclosure;
mod error;
mod money;
mod my;
mod oauth;
mod public;
mod report;
pub mod session;
mod visit;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::header,
    response::{Html, IntoResponse, Response},
    routing::get,
};

pub use self::error::H5Error;
use crate::Gateway;

/// The stylesheet, the only asset; a phone caches it after the first page.
const CSS: &str = include_str!("../../static/h5.css");

/// What the page handlers share.
#[derive(Clone)]
pub struct H5 {
    pub gateway: Gateway,
    /// For WeChat's OAuth code exchange.
    pub http: reqwest::Client,
}

pub fn router(gateway: Gateway) -> Router {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .expect("the TLS backend initializes");
    let state = H5 { gateway, http };
    Router::new()
        .route("/h5", get(public::index))
        .route("/h5/", get(public::index))
        .route("/h5/h5.css", get(css))
        .route("/h5/oauth", get(oauth::callback))
        .route("/h5/my", get(my::page))
        .route("/h5/bind", get(my::bind_form).post(my::bind))
        .route("/h5/disclosure", get(disclosure::page))
        .route("/h5/projects", get(public::projects))
        .route("/h5/policies", get(public::policies))
        .route(
            "/h5/report",
            get(report::form)
                .post(report::submit)
                .layer(DefaultBodyLimit::max(report::MAX_BODY_BYTES)),
        )
        .route(
            "/h5/progress",
            get(report::progress_form).post(report::progress),
        )
        .with_state(state)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        CSS,
    )
        .into_response()
}

/// Renders a template into a page; a template error is a bug, shown as one.
fn render(template: &impl askama::Template) -> Result<Html<String>, H5Error> {
    template.render().map(Html).map_err(|error| {
        tracing::error!(%error, "template failed to render");
        H5Error::Unavailable
    })
}
