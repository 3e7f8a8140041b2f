//! WeChat's server API as the gateway and notify call it, with WeChat's
//! JSON shapes and error codes: an error is HTTP 200 with
//! `{"errcode":N,"errmsg":"..."}`, as the real service answers.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    multipart,
    state::{CustomerMessage, Media, Refusal, State, TOKEN_TTL, unix_now},
};

type Shared = AxumState<Arc<State>>;
type Params = Query<HashMap<String, String>>;

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/cgi-bin/token", get(token))
        .route("/cgi-bin/stable_token", post(stable_token))
        .route("/cgi-bin/message/custom/send", post(custom_send))
        .route("/cgi-bin/message/template/send", post(template_send))
        .route("/cgi-bin/media/upload", post(media_upload))
        .route("/cgi-bin/media/get", get(media_get))
        .route("/cgi-bin/menu/create", post(menu_create))
        .route("/cgi-bin/menu/get", get(menu_get))
}

/// WeChat's error body.
pub fn error(errcode: i64, errmsg: &str) -> Json<Value> {
    Json(json!({ "errcode": errcode, "errmsg": errmsg }))
}

fn ok() -> Json<Value> {
    error(0, "ok")
}

/// Checks the credentials of a token request: appid first, then secret, as WeChat does.
fn credentials(
    state: &State,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<(), Json<Value>> {
    if appid != Some(state.config.appid.as_str()) {
        return Err(error(40013, "invalid appid"));
    }
    if secret != Some(state.config.appsecret.as_str()) {
        return Err(error(40125, "invalid appsecret"));
    }
    Ok(())
}

/// The `access_token` query parameter every API call carries.
fn authorized(state: &State, params: &HashMap<String, String>) -> Result<(), Json<Value>> {
    let Some(token) = params.get("access_token") else {
        return Err(error(41001, "access_token missing"));
    };
    state.check_token(token).map_err(|refusal| match refusal {
        Refusal::Expired => error(42001, "access_token expired"),
        Refusal::Invalid | Refusal::Used => error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ),
    })
}

fn errcode(body: &Json<Value>) -> i64 {
    body.0["errcode"].as_i64().unwrap_or(0)
}

/// Records the call and answers with `body`.
fn answer(state: &State, method: &str, path: &str, body: Json<Value>) -> Response {
    state.record_call(method, path, errcode(&body));
    body.into_response()
}

async fn token(AxumState(state): Shared, Query(params): Params) -> Response {
    let path = "/cgi-bin/token";
    if params.get("grant_type").map(String::as_str) != Some("client_credential") {
        return answer(&state, "GET", path, error(40002, "invalid grant_type"));
    }
    if let Err(body) = credentials(
        &state,
        params.get("appid").map(String::as_str),
        params.get("secret").map(String::as_str),
    ) {
        return answer(&state, "GET", path, body);
    }
    let token = state.issue_token(false);
    answer(
        &state,
        "GET",
        path,
        Json(json!({ "access_token": token, "expires_in": TOKEN_TTL.as_secs() })),
    )
}

#[derive(Deserialize)]
struct StableTokenRequest {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

/// `stable_token` hands out the same token until it expires or is force-refreshed.
async fn stable_token(AxumState(state): Shared, body: Bytes) -> Response {
    let path = "/cgi-bin/stable_token";
    let Ok(request) = serde_json::from_slice::<StableTokenRequest>(&body) else {
        return answer(&state, "POST", path, error(47001, "data format error"));
    };
    if request.grant_type.as_deref() != Some("client_credential") {
        return answer(&state, "POST", path, error(40002, "invalid grant_type"));
    }
    if let Err(body) = credentials(&state, request.appid.as_deref(), request.secret.as_deref()) {
        return answer(&state, "POST", path, body);
    }
    let (token, expires_in) = match state.current_stable_token() {
        Some((token, left)) if !request.force_refresh => (token, left.as_secs()),
        _ => (state.issue_token(true), TOKEN_TTL.as_secs()),
    };
    answer(
        &state,
        "POST",
        path,
        Json(json!({ "access_token": token, "expires_in": expires_in })),
    )
}

async fn custom_send(AxumState(state): Shared, Query(params): Params, body: Bytes) -> Response {
    let path = "/cgi-bin/message/custom/send";
    if let Err(body) = authorized(&state, &params) {
        return answer(&state, "POST", path, body);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return answer(&state, "POST", path, error(47001, "data format error"));
    };
    let (Some(touser), Some(msgtype)) = (body["touser"].as_str(), body["msgtype"].as_str()) else {
        return answer(&state, "POST", path, error(47001, "data format error"));
    };
    let text = match msgtype {
        "text" => match body["text"]["content"].as_str() {
            Some(content) => Some(content.to_owned()),
            None => return answer(&state, "POST", path, error(44003, "empty news data")),
        },
        "image" | "news" | "link" | "miniprogrampage" | "voice" | "video" | "music" | "mpnews" => {
            None
        }
        _ => return answer(&state, "POST", path, error(40008, "invalid message type")),
    };
    if let Err(code) = state.customer_allowed(touser) {
        let message = if code == 45015 {
            "response out of time limit or subscription is canceled"
        } else {
            "out of response count limit"
        };
        return answer(&state, "POST", path, error(code, message));
    }
    state.record_customer(CustomerMessage {
        touser: touser.to_owned(),
        msgtype: msgtype.to_owned(),
        text,
        body: body.clone(),
    });
    answer(&state, "POST", path, ok())
}

async fn template_send(AxumState(state): Shared, Query(params): Params, body: Bytes) -> Response {
    let path = "/cgi-bin/message/template/send";
    if let Err(body) = authorized(&state, &params) {
        return answer(&state, "POST", path, body);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return answer(&state, "POST", path, error(47001, "data format error"));
    };
    if body["touser"].as_str().is_none_or(str::is_empty) {
        return answer(&state, "POST", path, error(40003, "invalid openid"));
    }
    if body["template_id"].as_str().is_none_or(str::is_empty) {
        return answer(&state, "POST", path, error(40037, "invalid template_id"));
    }
    state.record_template(body);
    let msgid = rand::random::<u32>();
    answer(
        &state,
        "POST",
        path,
        Json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })),
    )
}

async fn media_upload(
    AxumState(state): Shared,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = "/cgi-bin/media/upload";
    if let Err(body) = authorized(&state, &params) {
        return answer(&state, "POST", path, body);
    }
    let kind = params.get("type").cloned().unwrap_or_default();
    if !matches!(kind.as_str(), "image" | "voice" | "video" | "thumb") {
        return answer(&state, "POST", path, error(40004, "invalid media type"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(part) = multipart::field(content_type, &body, "media") else {
        return answer(&state, "POST", path, error(41005, "media data missing"));
    };
    let media_id = state.put_media(Media {
        bytes: part.bytes,
        content_type: part.content_type.unwrap_or_else(|| "image/jpeg".to_owned()),
    });
    answer(
        &state,
        "POST",
        path,
        Json(json!({ "type": kind, "media_id": media_id, "created_at": unix_now() })),
    )
}

async fn media_get(AxumState(state): Shared, Query(params): Params) -> Response {
    let path = "/cgi-bin/media/get";
    if let Err(body) = authorized(&state, &params) {
        return answer(&state, "GET", path, body);
    }
    let media_id = params.get("media_id").cloned().unwrap_or_default();
    let Some(media) = state.media(&media_id) else {
        return answer(&state, "GET", path, error(40007, "invalid media_id"));
    };
    state.record_call("GET", path, 0);
    let disposition = format!("attachment; filename=\"{media_id}.jpg\"");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, media.content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        media.bytes,
    )
        .into_response()
}

async fn menu_create(AxumState(state): Shared, Query(params): Params, body: Bytes) -> Response {
    let path = "/cgi-bin/menu/create";
    if let Err(body) = authorized(&state, &params) {
        return answer(&state, "POST", path, body);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(menu) if menu["button"].is_array() => {
            state.set_menu(menu);
            answer(&state, "POST", path, ok())
        }
        _ => answer(&state, "POST", path, error(40016, "invalid button size")),
    }
}

async fn menu_get(AxumState(state): Shared, Query(params): Params) -> Response {
    let path = "/cgi-bin/menu/get";
    if let Err(body) = authorized(&state, &params) {
        return answer(&state, "GET", path, body);
    }
    match state.menu() {
        Some(menu) => answer(&state, "GET", path, Json(json!({ "menu": menu }))),
        None => answer(&state, "GET", path, error(46003, "menu no exist")),
    }
}
