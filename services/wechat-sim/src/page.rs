//! The chat page (`/`): play a citizen in the browser — type 查询, tap the
//! menu, send a photo, see passive and late replies, and open H5 links as
//! that citizen. Plain HTML, CSS and JS embedded in the binary; the page
//! talks to the JSON endpoints under `/sim/`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;

use crate::{Core, Event, Inbound, oauth::CITIZEN_COOKIE, state};

const INDEX_HTML: &str = include_str!("page/index.html");
const PAGE_CSS: &str = include_str!("page/page.css");
const PAGE_JS: &str = include_str!("page/page.js");

/// A photo bigger than this is refused by the page's endpoint (WeChat's
/// image limit is 10 MB).
const IMAGE_LIMIT: usize = 10 * 1024 * 1024;

type Shared = State<Arc<Core>>;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/sim/page.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    PAGE_CSS,
                )
            }),
        )
        .route(
            "/sim/page.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    PAGE_JS,
                )
            }),
        )
        .route("/sim/info", get(info))
        .route("/sim/log", get(log))
        .route("/sim/send", post(send))
        .route("/sim/event", post(event))
        .route(
            "/sim/image",
            post(image).layer(axum::extract::DefaultBodyLimit::max(IMAGE_LIMIT)),
        )
        .route("/sim/open", get(open))
        .route("/sim/pic/{media_id}", get(pic))
        .route("/sim/expire-tokens", post(expire_tokens))
}

/// The citizens, the menu and the account, for the page's header.
async fn info(State(core): Shared) -> Json<serde_json::Value> {
    Json(json!({
        "citizens": core.state.config.citizens,
        "menu": core.state.menu(),
        "account": core.state.config.account,
        "mode": format!("{:?}", core.pusher.mode),
        "webhook": core.pusher.webhook_url,
    }))
}

#[derive(Deserialize)]
struct LogQuery {
    openid: String,
    #[serde(default)]
    after: u64,
}

async fn log(State(core): Shared, Query(query): Query<LogQuery>) -> Json<Vec<state::ChatLine>> {
    Json(core.state.chat_since(&query.openid, query.after))
}

fn valid_openid(openid: &str) -> bool {
    huimin_kit::openid::OpenId::parse(openid).is_ok()
}

fn bad_openid() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "openid 只能由字母、数字、- 和 _ 组成（1–128 个字符）",
    )
        .into_response()
}

#[derive(Deserialize)]
struct SendRequest {
    openid: String,
    text: String,
}

/// The push runs in the background: the page polls `/sim/log` for the
/// reply, so a slow webhook never holds the browser's request.
async fn send(State(core): Shared, Json(request): Json<SendRequest>) -> Response {
    if !valid_openid(&request.openid) {
        return bad_openid();
    }
    if request.text.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, "消息不能为空").into_response();
    }
    tokio::spawn(async move {
        let _ = core
            .act(&request.openid, Inbound::Text(request.text), false)
            .await;
    });
    StatusCode::ACCEPTED.into_response()
}

#[derive(Deserialize)]
struct EventRequest {
    openid: String,
    /// `subscribe`, `unsubscribe`, `click` or `view`.
    event: String,
    #[serde(default)]
    key: String,
}

async fn event(State(core): Shared, Json(request): Json<EventRequest>) -> Response {
    if !valid_openid(&request.openid) {
        return bad_openid();
    }
    let event = match request.event.as_str() {
        "subscribe" => Event::Subscribe,
        "unsubscribe" => Event::Unsubscribe,
        "click" => Event::Click(request.key),
        "view" => Event::View(request.key),
        other => {
            return (StatusCode::BAD_REQUEST, format!("未知事件 {other:?}")).into_response();
        }
    };
    tokio::spawn(async move {
        let _ = core
            .act(&request.openid, Inbound::Event(event), false)
            .await;
    });
    StatusCode::ACCEPTED.into_response()
}

async fn image(
    State(core): Shared,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let openid = query.get("openid").cloned().unwrap_or_default();
    if !valid_openid(&openid) {
        return bad_openid();
    }
    if body.is_empty() {
        return (StatusCode::BAD_REQUEST, "图片是空的").into_response();
    }
    tokio::spawn(async move {
        let _ = core.image(&openid, body.to_vec()).await;
    });
    StatusCode::ACCEPTED.into_response()
}

#[derive(Deserialize)]
struct OpenQuery {
    openid: String,
    url: String,
}

/// Opens an H5 link as `openid`: the cookie tells the sim's OAuth page who
/// is holding the phone, then the browser goes to the link.
async fn open(Query(query): Query<OpenQuery>) -> Response {
    if !valid_openid(&query.openid) {
        return bad_openid();
    }
    if !(query.url.starts_with("http://") || query.url.starts_with("https://")) {
        return (StatusCode::BAD_REQUEST, "只能打开 http(s) 链接").into_response();
    }
    let cookie = format!(
        "{CITIZEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
        query.openid
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&query.url)).into_response()
}

async fn pic(State(core): Shared, Path(media_id): Path<String>) -> Response {
    match core.state.media(&media_id) {
        Some(media) => ([(header::CONTENT_TYPE, media.content_type)], media.bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// For a developer trying the gateway's token refresh by hand.
async fn expire_tokens(State(core): Shared) -> StatusCode {
    core.state.expire_tokens();
    StatusCode::NO_CONTENT
}

/// Shown by the OAuth page when no citizen was chosen yet: pick one, and
/// the authorization continues as that citizen. `params` is the
/// authorization request's query.
pub fn pick_citizen_html(state: &state::State, params: &HashMap<String, String>) -> String {
    let links: String = state
        .config
        .citizens
        .iter()
        .map(|c| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in params.iter().filter(|(name, _)| *name != "openid") {
                query.append_pair(name, value);
            }
            query.append_pair("openid", &c.openid);
            format!(
                "<li><a href=\"/connect/oauth2/authorize?{}\">{}（{}）</a></li>",
                html_escape(&query.finish()),
                html_escape(&c.label),
                html_escape(&c.openid)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>选择居民</title>\
<link rel=\"icon\" href=\"data:,\">\
<body style=\"font:16px system-ui,sans-serif;margin:1.5em\"><h1 style=\"font-size:1.2em\">本地微信：以哪位居民的身份打开？</h1>\
<p>请从聊天页打开链接，或选择一位演示居民：</p><ul>{links}</ul></body></html>"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
