//! The per-request time limit, except for methods a service marks as long
//! running (client-streaming imports, whose handler runs until the whole
//! file is checked and stored). Server-streaming methods return their
//! response head at once, so the limit never cuts a stream's body.

use std::{
    collections::HashSet,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::{BoxFuture, FutureExt as _};
use tower::{Layer, Service};

/// Applies `timeout` to every request whose path is not in `exempt`.
#[derive(Clone)]
pub struct DeadlineLayer {
    timeout: Duration,
    exempt: Arc<HashSet<String>>,
}

impl DeadlineLayer {
    pub fn new(timeout: Duration, exempt: HashSet<String>) -> Self {
        Self {
            timeout,
            exempt: Arc::new(exempt),
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            timeout: self.timeout,
            exempt: self.exempt.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
    exempt: Arc<HashSet<String>>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Deadline<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if self.exempt.contains(request.uri().path()) {
            return self.inner.call(request).boxed();
        }
        let timeout = self.timeout;
        let response = self.inner.call(request);
        async move {
            match tokio::time::timeout(timeout, response).await {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded("请求超时，请稍后再试").into_http()),
            }
        }
        .boxed()
    }
}
