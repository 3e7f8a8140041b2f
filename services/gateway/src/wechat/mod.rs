//! WeChat's server API as the gateway calls it: the access_token (shared by
//! replicas through Redis), customer-service messages (客服消息) for answers
//! that missed the passive reply's deadline, and media download for photos
//! a citizen sends in chat.

mod http;
mod token;

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::config::GatewayConfig;
use huimin_kit::cache::Cache;

/// Largest media file fetched (WeChat's images are at most 10 MB; ours are capped lower
/// because whistle keeps attachments of a few MB).
pub const MAX_MEDIA_BYTES: usize = 10 * 1024 * 1024;
/// Largest JSON answer read from the API.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// A photo or file fetched through the media API.
#[derive(Debug, Clone)]
pub struct Media {
    pub bytes: Vec<u8>,
    /// As WeChat labelled it (`image/jpeg`).
    pub content_type: String,
}

/// An `errcode` WeChat answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatError {
    pub errcode: i64,
    pub errmsg: String,
}

/// Why a WeChat API call failed; never carries a token or a message body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("wechat api unreachable: {0}")]
    Unreachable(String),
    /// WeChat answered with an `errcode` other than 0.
    #[error("wechat api error {}: {}", .0.errcode, .0.errmsg)]
    WeChat(WeChatError),
    #[error("wechat api answered HTTP {0}")]
    Status(u16),
    #[error("wechat api answer over {0} bytes")]
    TooLarge(usize),
    #[error("wechat api answer is not what its documentation says")]
    Malformed,
}

impl ApiError {
    /// The errcodes after which a fresh access_token is worth one more try.
    fn token_invalid(&self) -> bool {
        matches!(self, ApiError::WeChat(e) if matches!(e.errcode, 40001 | 40014 | 42001))
    }
}

/// The client; cheap to clone.
#[derive(Clone)]
pub struct WeChatApi {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<GatewayConfig>,
    http: http::Http,
    tokens: token::Tokens,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

fn check(body: &[u8]) -> Result<(), ApiError> {
    let status: Status = serde_json::from_slice(body).map_err(|_| ApiError::Malformed)?;
    if status.errcode == 0 {
        Ok(())
    } else {
        Err(ApiError::WeChat(WeChatError {
            errcode: status.errcode,
            errmsg: status.errmsg,
        }))
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl WeChatApi {
    pub fn new(config: Arc<GatewayConfig>, cache: Cache) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http: http::Http::new(),
                tokens: token::Tokens::new(cache),
            }),
        }
    }

    fn url(&self, path: &str, query_string: &str) -> String {
        format!("{}{path}?{query_string}", self.inner.config.api_base)
    }

    async fn token(&self) -> Result<SecretString, ApiError> {
        let config = &self.inner.config;
        let url = self.url(
            "/cgi-bin/token",
            &query(&[
                ("grant_type", "client_credential"),
                ("appid", &config.appid),
                ("secret", config.appsecret.expose_secret()),
            ]),
        );
        self.inner.tokens.get(&self.inner.http, &url).await
    }

    /// Runs `call` with a token; once more with a fresh one if WeChat calls it invalid.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let token = self.token().await?;
        match call(token.clone()).await {
            Err(e) if e.token_invalid() => {
                tracing::info!(error = %e, "access_token refused; fetching a new one");
                self.inner.tokens.invalidate(&token).await;
                call(self.token().await?).await
            }
            other => other,
        }
    }

    /// Sends a text customer-service message to `openid`.
    pub async fn send_text(&self, openid: &str, text: &str) -> Result<(), ApiError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "touser": openid,
            "msgtype": "text",
            "text": { "content": text },
        }))
        .map_err(|_| ApiError::Malformed)?;
        self.with_token(|token| {
            let url = self.url(
                "/cgi-bin/message/custom/send",
                &query(&[("access_token", token.expose_secret())]),
            );
            let body = body.clone();
            async move {
                let answer = self
                    .inner
                    .http
                    .call(::http::Method::POST, &url, Some(body), MAX_JSON_BYTES)
                    .await?;
                check(&answer.body)
            }
        })
        .await
    }

    /// Downloads a temporary media file a citizen sent (WeChat keeps them 3 days).
    pub async fn media(&self, media_id: &str) -> Result<Media, ApiError> {
        self.with_token(|token| {
            let url = self.url(
                "/cgi-bin/media/get",
                &query(&[
                    ("access_token", token.expose_secret()),
                    ("media_id", media_id),
                ]),
            );
            async move {
                let answer = self
                    .inner
                    .http
                    .call(::http::Method::GET, &url, None, MAX_MEDIA_BYTES)
                    .await?;
                // A JSON body is an error (or a video's URL, which chat does not take).
                if answer.content_type.starts_with("application/json")
                    || answer.content_type.starts_with("text/plain")
                {
                    check(&answer.body)?;
                    return Err(ApiError::Malformed);
                }
                Ok(Media {
                    bytes: answer.body.to_vec(),
                    content_type: answer.content_type,
                })
            }
        })
        .await
    }
}
