//! The HTTP client the sim pushes with: hyper's, already under axum, plain
//! HTTP only (the webhook it calls is local).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct HttpClient(Client<HttpConnector, Full<Bytes>>);

impl Default for HttpClient {
    fn default() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }
}

/// An answer, whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl HttpClient {
    /// GETs `url` (no redirects followed), waiting at most `timeout`.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Answer, HttpError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| HttpError::Failed(format!("bad request to {url}: {e}")))?;
        self.exchange(url, request, timeout).await
    }

    async fn exchange(
        &self,
        url: &str,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        let exchange = async {
            let response = self
                .0
                .request(request)
                .await
                .map_err(|e| HttpError::Failed(format!("{url}: {e}")))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Failed(format!("reading the answer of {url}: {e}")))?
                .to_bytes();
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    /// POSTs `body` to `url`, waiting at most `timeout` for the whole answer.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::Failed(format!("bad request to {url}: {e}")))?;
        let answer = self.exchange(url, request, timeout).await?;
        Ok((answer.status, answer.body))
    }
}
