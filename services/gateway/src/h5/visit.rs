//! One page request as the handlers see it: the session (read from its
//! signed cookie, or a fresh one), the client IP, and how to answer.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{Html, IntoResponse, Response},
};
use huimin_kit::openid::OpenId;

use super::{
    H5, H5Error,
    session::{SESSION_COOKIE, SESSION_TTL, Session, Signer, cookie, set_cookie},
};
use crate::{
    limits::{Action, Caller},
    usage::Metric,
};

pub struct Visit {
    pub session: Session,
    /// The session was made for this request and must be set as a cookie.
    fresh: bool,
    pub ip: Option<IpAddr>,
    secure: bool,
}

impl FromRequestParts<H5> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &H5) -> Result<Self, Self::Rejection> {
        let config = &state.gateway.config;
        let signer = Signer(&config.session_key);
        // A tampered, foreign or expired cookie is as good as none: the
        // visitor starts over with an empty session (and OAuth again).
        let existing = cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|value| signer.open::<Session>(SESSION_COOKIE, value));
        let (session, fresh) = match existing {
            Some(session) => (session, false),
            None => (Session::new(None), true),
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self {
            session,
            fresh,
            ip: client_ip(peer, &parts.headers, &config.trusted_proxies),
            secure: config.public_url.starts_with("https://"),
        })
    }
}

/// The connection's address, or the last address a trusted proxy added to
/// `X-Forwarded-For` when the connection comes from one.
fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .rfind(|ip| !trusted.contains(ip));
    Some(forwarded.unwrap_or(peer))
}

impl Visit {
    /// Replaces the session (after OAuth), to be set on the answer.
    pub fn replace(&mut self, session: Session) {
        self.session = session;
        self.fresh = true;
    }

    pub fn caller(&self) -> Caller {
        Caller {
            openid: self.session.openid(),
            ip: self.ip,
        }
    }

    /// Counts `action` against the abuse limits.
    pub async fn limit(&self, h5: &H5, action: Action) -> Result<(), H5Error> {
        h5.gateway
            .limits
            .check(action, &self.caller())
            .await
            .map_err(|limited| H5Error::Limited(limited.message_zh))
    }

    /// A posted form's token must be this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), H5Error> {
        if self.fresh || !self.session.csrf_matches(token) {
            return Err(H5Error::Csrf);
        }
        Ok(())
    }

    pub fn session_cookie(&self, h5: &H5) -> Option<HeaderValue> {
        if !self.fresh {
            return None;
        }
        let sealed = Signer(&h5.gateway.config.session_key).seal(SESSION_COOKIE, &self.session);
        HeaderValue::from_str(&set_cookie(
            SESSION_COOKIE,
            &sealed,
            SESSION_TTL,
            self.secure,
        ))
        .ok()
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The openid, or the redirect into WeChat's OAuth flow that gets it.
    pub fn openid_or_login(&self, h5: &H5, return_to: &str) -> Result<OpenId, Box<Response>> {
        match self.session.openid() {
            Some(openid) => Ok(openid),
            None => Err(Box::new(super::oauth::start(h5, self, return_to))),
        }
    }

    /// The answer with this visit's cookie; pages are personal, never cached.
    /// Every page served is a page view; one by a signed-in citizen also
    /// counts them as a visitor of the day.
    pub fn page(&self, h5: &H5, html: Html<String>) -> Response {
        match self.session.openid() {
            Some(openid) => h5.gateway.usage.visit(&openid, Metric::PageViews),
            None => h5.gateway.usage.count(Metric::PageViews, 1),
        }
        let mut response = html.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cookie) = self.session_cookie(h5) {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test IP")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.9"),
        );
        let proxy = ip("10.0.0.9");
        assert_eq!(
            client_ip(Some(ip("5.6.7.8")), &headers, &[proxy]),
            Some(ip("5.6.7.8"))
        );
        assert_eq!(
            client_ip(Some(proxy), &headers, &[proxy]),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(client_ip(Some(proxy), &headers, &[]), Some(proxy));
    }
}
