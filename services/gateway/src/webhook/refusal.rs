//! Why the webhook refused a request: one enum, one status and metric label per case.
//!
//! A refusal is logged with its reason and the request's mode only — never the body, the
//! openid or the query's signature values — and answered with a short English text: the
//! caller is WeChat (or someone pretending to be), not a citizen.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use huimin_wechat::{CryptError, XmlError};

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("signature, timestamp or nonce missing")]
    MissingSignature,
    #[error("signature does not match")]
    Signature,
    #[error("msg_signature missing or does not match")]
    MsgSignature,
    #[error("encrypted message but no EncodingAESKey is configured")]
    NoKey,
    #[error("ciphertext refused: {0}")]
    Ciphertext(CryptError),
    #[error("message was encrypted for another appid")]
    AppId,
    #[error("body refused: {0}")]
    Xml(XmlError),
    #[error("FromUserName is not an openid")]
    OpenId,
    #[error("body over {0} bytes")]
    TooLarge(usize),
}

impl Refusal {
    /// The `outcome` label of `webhook_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::MissingSignature | Refusal::Signature => "refused_signature",
            Refusal::MsgSignature => "refused_msg_signature",
            Refusal::NoKey => "refused_no_key",
            Refusal::Ciphertext(_) => "refused_ciphertext",
            Refusal::AppId => "refused_appid",
            Refusal::Xml(_) | Refusal::OpenId => "refused_xml",
            Refusal::TooLarge(_) => "refused_too_large",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingSignature
            | Refusal::Signature
            | Refusal::MsgSignature
            | Refusal::AppId => StatusCode::FORBIDDEN,
            Refusal::NoKey | Refusal::Ciphertext(_) | Refusal::Xml(_) | Refusal::OpenId => {
                StatusCode::BAD_REQUEST
            }
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status(), self.to_string()).into_response()
    }
}
