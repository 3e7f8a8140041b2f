//! WeChat's web authorization (snsapi_base) for the gateway's H5 pages:
//! `/connect/oauth2/authorize` redirects back with a code for the citizen
//! chosen in the chat page (the `sim_openid` cookie) or named by the
//! `openid` query parameter (tests); `/sns/oauth2/access_token` turns the
//! code into that openid once.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Query, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{
    api::error,
    state::{Refusal, State, random_token},
};

/// The cookie the chat page sets to say who is holding the phone.
pub const CITIZEN_COOKIE: &str = "sim_openid";

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/connect/oauth2/authorize", get(authorize))
        .route("/sns/oauth2/access_token", get(access_token))
}

/// The openid in the `sim_openid` cookie, if any.
pub fn cookie_openid(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == CITIZEN_COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// WeChat shows its own error page for a bad authorization link; the sim
/// answers with the errcode in plain text so a developer sees what is wrong.
fn refuse(errcode: i64, errmsg: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{errcode} {errmsg}")).into_response()
}

async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if param("appid").is_empty() {
        return refuse(10012, "appid 参数为空");
    }
    if param("appid") != state.config.appid {
        return refuse(40013, "invalid appid");
    }
    if param("redirect_uri").is_empty() {
        return refuse(10011, "redirect_uri 参数为空");
    }
    if !matches!(param("scope"), "snsapi_base" | "snsapi_userinfo") {
        return refuse(10005, "此公众号并没有这些 scope 的权限");
    }
    if param("response_type") != "code" {
        return refuse(10004, "response_type 参数错误");
    }
    let state_param = param("state");
    if state_param.len() > 128 || !state_param.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return refuse(10013, "state 参数错误");
    }
    let openid = params
        .get("openid")
        .cloned()
        .or_else(|| cookie_openid(&headers));
    let Some(openid) = openid else {
        return Html(crate::page::pick_citizen_html(&state, &params)).into_response();
    };
    let code = state.issue_code(&openid);
    let redirect = param("redirect_uri");
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let target = format!(
        "{redirect}{separator}{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", state_param)
            .finish()
    );
    state.record_call("GET", "/connect/oauth2/authorize", 0);
    // 302, as WeChat answers (axum's Redirect::to is a 303).
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn access_token(
    AxumState(state): AxumState<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let path = "/sns/oauth2/access_token";
    let param = |name: &str| params.get(name).map(String::as_str);
    let body = if param("grant_type") != Some("authorization_code") {
        error(40002, "invalid grant_type")
    } else if param("appid") != Some(state.config.appid.as_str()) {
        error(40013, "invalid appid")
    } else if param("secret") != Some(state.config.appsecret.as_str()) {
        error(40125, "invalid appsecret")
    } else {
        match state.redeem_code(param("code").unwrap_or_default()) {
            Ok(openid) => Json(json!({
                "access_token": random_token(64),
                "expires_in": 7200,
                "refresh_token": random_token(64),
                "openid": openid,
                "scope": "snsapi_base",
            })),
            Err(Refusal::Used) => error(40163, "code been used"),
            Err(Refusal::Invalid | Refusal::Expired) => error(40029, "invalid code"),
        }
    };
    state.record_call("GET", path, body.0["errcode"].as_i64().unwrap_or(0));
    body.into_response()
}

/// The authorization link an H5 page would send a citizen to, made for
/// `openid` directly (tests skip the cookie).
pub fn authorize_url(base: &str, appid: &str, openid: &str, redirect: &str, state: &str) -> String {
    format!(
        "{base}/connect/oauth2/authorize?{}#wechat_redirect",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", appid)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "snsapi_base")
            .append_pair("state", state)
            .append_pair("openid", openid)
            .finish()
    )
}
