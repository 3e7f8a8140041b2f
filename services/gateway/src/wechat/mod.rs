//! WeChat's server API as the gateway calls it: the access_token (shared by
//! replicas through Redis), customer-service messages (客服消息) for answers
//! that missed the passive reply's deadline, and media download for photos
//! a citizen sends in chat.

use std::sync::Arc;

use crate::config::GatewayConfig;

/// A photo or file fetched through the media API.
#[derive(Debug, Clone)]
pub struct Media {
    pub bytes: Vec<u8>,
    /// As WeChat labelled it (`image/jpeg`).
    pub content_type: String,
}

/// Why a WeChat API call failed; never carries a token or a message body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("wechat api unreachable: {0}")]
    Unreachable(String),
    /// WeChat answered with an `errcode` other than 0.
    #[error("wechat api error {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    #[error("wechat api: not implemented yet")]
    NotImplemented,
}

/// The client; cheap to clone.
#[derive(Clone)]
pub struct WeChatApi {
    #[allow(dead_code)]
    config: Arc<GatewayConfig>,
}

impl WeChatApi {
    pub fn new(config: Arc<GatewayConfig>) -> Self {
        Self { config }
    }

    /// Sends a text customer-service message to `openid`.
    pub async fn send_text(&self, _openid: &str, _text: &str) -> Result<(), ApiError> {
        Err(ApiError::NotImplemented)
    }

    /// Downloads a temporary media file a citizen sent.
    pub async fn media(&self, _media_id: &str) -> Result<Media, ApiError> {
        Err(ApiError::NotImplemented)
    }
}
