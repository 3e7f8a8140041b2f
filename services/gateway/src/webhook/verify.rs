//! The query WeChat puts on every request, its signature check, and URL verification (GET).

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use huimin_wechat::signature;
use serde::Deserialize;

use super::{Webhook, refusal::Refusal};

/// The query string of a webhook request. Every field is optional here so that a missing
/// one is a [`Refusal`] with a clear reason, not axum's generic rejection.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    /// URL verification only.
    pub echostr: Option<String>,
    /// `aes` in compatible and safe modes; absent or `raw` in plain mode.
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
}

impl Params {
    /// Checks `signature = sha1(sort(token, timestamp, nonce))`, which WeChat sends in every
    /// mode, on every request.
    pub fn verify(&self, token: &str) -> Result<(), Refusal> {
        let (Some(sig), Some(timestamp), Some(nonce)) =
            (&self.signature, &self.timestamp, &self.nonce)
        else {
            return Err(Refusal::MissingSignature);
        };
        if !signature::verify(sig, token, &[timestamp, nonce]) {
            return Err(Refusal::Signature);
        }
        Ok(())
    }

    /// Whether WeChat says the body is encrypted (compatible or safe mode).
    pub fn encrypted(&self) -> bool {
        self.encrypt_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("aes"))
    }
}

/// GET `/wechat`: WeChat checks the server is ours; answer `echostr` verbatim.
///
/// In Official-Account safe mode the echostr is still plain (silenceper/wechat does not
/// decrypt it; WeCom, which encrypts it, is not served here).
pub async fn url_verification(
    State(webhook): State<Webhook>,
    Query(params): Query<Params>,
) -> Response {
    let token = webhook.token();
    match params.verify(token) {
        Ok(_) => match params.echostr {
            Some(echostr) => {
                super::count("verify", "verified");
                echostr.into_response()
            }
            None => {
                super::count("verify", "refused_signature");
                Refusal::MissingSignature.into_response()
            }
        },
        Err(refusal) => {
            super::count("verify", refusal.outcome());
            tracing::warn!(reason = %refusal, "webhook url verification refused");
            refusal.into_response()
        }
    }
}
