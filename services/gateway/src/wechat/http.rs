//! The HTTP client under [`super::WeChatApi`]: hyper-util over rustls (ring, webpki roots).
//!
//! Chosen over reqwest because hyper and hyper-util are already in the build (axum, the
//! local WeChat), and reqwest's rustls default pulls aws-lc-rs, a C build with cmake; what
//! the API needs — a JSON GET/POST and a capped binary GET — is a page of code.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use super::ApiError;

/// One call, connect to last byte; the webhook's late answers and media fetches afford it.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Clone)]
pub struct Http {
    client: Client<Connector, Full<Bytes>>,
}

/// A response: status, content type and body (already capped).
pub struct Answer {
    pub content_type: String,
    pub body: Bytes,
}

impl Http {
    pub fn new() -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends a request and reads at most `cap` bytes of its body. Errors say what failed,
    /// never the URL (it carries the access_token) or the body.
    pub async fn call(
        &self,
        method: http::Method,
        url: &str,
        json: Option<Vec<u8>>,
        cap: usize,
    ) -> Result<Answer, ApiError> {
        let mut request = http::Request::builder().method(method).uri(url);
        if json.is_some() {
            request = request.header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            );
        }
        let request = request
            .body(Full::new(Bytes::from(json.unwrap_or_default())))
            .map_err(|_| ApiError::Unreachable("request could not be built".into()))?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ApiError::Unreachable(describe(&e)))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = Limited::new(response.into_body(), cap)
                .collect()
                .await
                .map_err(|_| ApiError::TooLarge(cap))?
                .to_bytes();
            if !status.is_success() {
                return Err(ApiError::Status(status.as_u16()));
            }
            Ok(Answer { content_type, body })
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| ApiError::Unreachable("timed out".into()))?
    }
}

/// What went wrong in the client, without the URL hyper's error may show.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    if error.is_connect() {
        "connect failed".into()
    } else {
        "request failed".into()
    }
}
