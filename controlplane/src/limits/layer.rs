//! [`LimitsLayer`]: the limits that apply to a call before its handler sees it.
//!
//! For every call under `/pinbook.v2.`: the [`Caller`] is put into the request's extensions
//! (the book service counts subscriptions by it); every call, a subscription opened
//! included, takes one from its client's rate bucket; the call must produce its response head within `request_deadline_ms`; and
//! tonic's OUT_OF_RANGE for a request message over `max_message_bytes` is turned into the
//! RESOURCE_EXHAUSTED every other limit gives (the code gRPC's own implementations use for
//! it), counted as a hit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;
use tower::{Layer, Service};

use super::{Admission, Limit, Tokens, caller};

/// The path prefix of the calls limited (health and reflection are not).
const LIMITED: &str = "/pinbook.v2.";

/// Wraps a service in [`Limits`].
#[derive(Clone, Debug)]
pub struct LimitsLayer {
    admission: Arc<Admission>,
    tokens: Tokens,
}

impl LimitsLayer {
    /// The layer enforcing `admission`'s limits; `tokens` name their clients.
    pub fn new(admission: Arc<Admission>, tokens: Tokens) -> Self {
        Self { admission, tokens }
    }
}

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limits {
            inner,
            admission: Arc::clone(&self.admission),
            tokens: self.tokens.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Limits<S> {
    inner: S,
    admission: Arc<Admission>,
    tokens: Tokens,
}

impl<S, B, R> Service<http::Request<B>> for Limits<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if !path.starts_with(LIMITED) {
            return Box::pin(self.inner.call(request));
        }
        let who = caller(request.headers(), request.extensions(), &self.tokens);
        let limits = self.admission.limits();
        if let Err(status) = self.admission.call(&who.client, Instant::now()) {
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        request.extensions_mut().insert(who);
        let response = self.inner.call(request);
        let deadline = limits.request_deadline();
        Box::pin(async move {
            let Ok(response) = tokio::time::timeout(deadline, response).await else {
                let status = Limit::RequestDeadline.hit(
                    limits.request_deadline_ms,
                    "the call's request did not arrive, or was not answered, in time",
                );
                return Ok(status.into_http());
            };
            let mut response = response?;
            too_large_is_exhausted(response.headers_mut(), limits.max_message_bytes);
            Ok(response)
        })
    }
}

/// Rewrites tonic's trailers-only OUT_OF_RANGE for an oversized request message into
/// RESOURCE_EXHAUSTED naming `max_message_bytes`, and counts the hit.
fn too_large_is_exhausted(headers: &mut http::HeaderMap, max: u32) {
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| {
            m.contains("message%20length%20too%20large") || m.contains("message length too large")
        });
    if !(out_of_range && too_large) {
        return;
    }
    let status = Limit::MessageBytes.hit(
        max.into(),
        "the request message is larger; send a smaller one (fewer symbols)",
    );
    let head = status.into_http::<()>().into_parts().0.headers;
    for name in ["grpc-status", "grpc-message"] {
        if let Some(value) = head.get(name) {
            headers.insert(name, value.clone());
        }
    }
}
