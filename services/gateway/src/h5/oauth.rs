//! WeChat's silent OAuth2 flow (snsapi_base, WECHAT.md section 9): a page
//! that needs the openid sends the browser to WeChat with a random `state`
//! kept in a signed pre-session cookie; WeChat sends it back with a code,
//! which the gateway exchanges for the openid server to server.
//!
//! The `state` bound to the cookie is what stops a login CSRF: a code
//! obtained by someone else and planted in a link is refused, because the
//! victim's browser has no pre-session with that state.

use axum::{
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use huimin_kit::openid::OpenId;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{
    H5, H5Error,
    session::{OAUTH_COOKIE, OAUTH_TTL, OAuthPending, Session, Signer, cookie, set_cookie},
    visit::Visit,
};

/// The redirect to WeChat's authorization page, with a new pre-session.
pub fn start(h5: &H5, visit: &Visit, return_to: &str) -> Response {
    let config = &h5.gateway.config;
    let pending = OAuthPending::new(return_to);
    let redirect_uri = format!("{}/h5/oauth", config.public_url);
    let location = format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope=snsapi_base&state={}#wechat_redirect",
        config.oauth_base,
        encode(&config.appid),
        encode(&redirect_uri),
        pending.state,
    );
    let sealed = Signer(&config.session_key).seal(OAUTH_COOKIE, &pending);
    let mut response = (StatusCode::FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(&set_cookie(
        OAUTH_COOKIE,
        &sealed,
        OAUTH_TTL,
        visit.secure(),
    )) {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Percent-encodes everything but unreserved characters (as wechatpy
/// quotes `redirect_uri` with `safe=''`).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

/// WeChat's answer to the code exchange: the openid, or an error code.
#[derive(Deserialize)]
struct TokenAnswer {
    openid: Option<String>,
    errcode: Option<i64>,
}

pub async fn callback(
    State(h5): State<H5>,
    mut visit: Visit,
    headers: axum::http::HeaderMap,
    Query(callback): Query<Callback>,
) -> Result<Response, H5Error> {
    let config = &h5.gateway.config;
    let pending = cookie(&headers, OAUTH_COOKIE)
        .and_then(|value| Signer(&config.session_key).open::<OAuthPending>(OAUTH_COOKIE, value))
        .ok_or(H5Error::OAuth)?;
    let (Some(code), Some(state)) = (callback.code, callback.state) else {
        return Err(H5Error::OAuth);
    };
    if state != pending.state {
        tracing::warn!("oauth state does not match the pre-session");
        return Err(H5Error::OAuth);
    }
    let openid = exchange(&h5, &code).await?;
    visit.replace(Session::new(Some(openid)));
    let mut response = (StatusCode::FOUND, [(header::CACHE_CONTROL, "no-store")]).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&safe_return(&pending.return_to)) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = visit.session_cookie(&h5) {
        headers.append(header::SET_COOKIE, cookie);
    }
    // The pre-session is spent.
    if let Ok(clear) = HeaderValue::from_str(&set_cookie(
        OAUTH_COOKIE,
        "",
        std::time::Duration::ZERO,
        visit.secure(),
    )) {
        headers.append(header::SET_COOKIE, clear);
    }
    Ok(response)
}

/// Only our own pages: an outside address would make this an open redirect.
fn safe_return(path: &str) -> String {
    if path.starts_with("/h5/") && !path.contains("//") && !path.contains('\\') {
        path.to_owned()
    } else {
        "/h5/".to_owned()
    }
}

/// `sns/oauth2/access_token`: code → openid. The access token it also
/// returns is not kept; snsapi_base needs nothing else.
async fn exchange(h5: &H5, code: &str) -> Result<OpenId, H5Error> {
    let config = &h5.gateway.config;
    let url = format!("{}/sns/oauth2/access_token", config.api_base);
    let answer = h5
        .http
        .get(url)
        .query(&[
            ("appid", config.appid.as_str()),
            ("secret", config.appsecret.expose_secret()),
            ("code", code),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| {
            // Without the URL: it carries the app secret.
            tracing::warn!(error = %error.without_url(), "oauth code exchange failed");
            H5Error::Unavailable
        })?
        .json::<TokenAnswer>()
        .await
        .map_err(|_| {
            tracing::warn!("oauth code exchange answered something unreadable");
            H5Error::Unavailable
        })?;
    match (answer.openid, answer.errcode) {
        (Some(openid), None | Some(0)) => OpenId::parse(&openid).map_err(|_| {
            tracing::warn!("oauth code exchange gave a malformed openid");
            H5Error::OAuth
        }),
        (_, errcode) => {
            // 40029: invalid or used code — a reload of the callback page.
            tracing::warn!(?errcode, "oauth code refused by wechat");
            Err(H5Error::OAuth)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_is_fully_percent_encoded() {
        assert_eq!(
            encode("http://127.0.0.1:8080/h5/oauth"),
            "http%3A%2F%2F127.0.0.1%3A8080%2Fh5%2Foauth"
        );
    }

    #[test]
    fn only_our_pages_are_returned_to() {
        assert_eq!(safe_return("/h5/my"), "/h5/my");
        assert_eq!(safe_return("https://evil.example/"), "/h5/");
        assert_eq!(safe_return("/h5//evil.example"), "/h5/");
    }
}
