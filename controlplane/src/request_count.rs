//! [`CountRequests`]: a tower layer on the gRPC server that counts every pinbook.v2 call once,
//! by method and status code, in `pinbook_grpc_requests_total` — rejected by the auth
//! interceptor, refused by a handler, or answered. Handlers do not count.
//!
//! The code is the one the response starts with: a `grpc-status` header (a trailers-only
//! response: every error tonic returns before a stream's first message, the interceptor's
//! included), or OK for a response that began (a unary answer, or a stream that opened; how a
//! stream ends later is not a request's outcome).
//!
//! The `method` label is one of pinbook.v2's methods ([`METHODS`], listed by the build from
//! the proto) or [`UNKNOWN`] for any other path under `/pinbook.v2.`: a client cannot create
//! series by making paths up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Code;
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::metrics::count_request;

/// The services counted: pinbook.v2's (health and reflection are not).
const COUNTED: &str = "/pinbook.v2.";

/// The `method` label of a call to a path under `/pinbook.v2.` that names no method.
pub const UNKNOWN: &str = "pinbook.v2 (unknown method)";

include!(concat!(env!("OUT_DIR"), "/pinbook_methods.rs"));

/// The `method` label of a request for `path`, if it is counted.
fn label(path: &str) -> Option<&'static str> {
    let name = path.strip_prefix('/')?;
    if !path.starts_with(COUNTED) {
        return None;
    }
    Some(
        METHODS
            .iter()
            .copied()
            .find(|m| *m == name)
            .unwrap_or(UNKNOWN),
    )
}

/// Wraps a service in [`CountRequests`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CountRequestsLayer;

impl<S> Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests { inner }
    }
}

/// Counts each pinbook.v2 call once its response starts (see the module docs).
#[derive(Clone, Debug)]
pub struct CountRequests<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for CountRequests<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // "/pinbook.v2.BookService/GetBook" is counted as "pinbook.v2.BookService/GetBook"
        let method = label(request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if let (Some(method), Ok(response)) = (method, &response) {
                count_request(method, status_of(response.headers()));
            }
            response
        })
    }
}

/// The code a response starts with: its `grpc-status` header, or OK when it has none.
fn status_of(headers: &http::HeaderMap) -> Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pinbook_methods_are_labelled_by_name() {
        assert!(METHODS.len() >= 7, "{METHODS:?}");
        assert_eq!(
            label("/pinbook.v2.BookService/GetBook"),
            Some("pinbook.v2.BookService/GetBook")
        );
        assert_eq!(
            label("/pinbook.v2.AdminService/AddSymbol"),
            Some("pinbook.v2.AdminService/AddSymbol")
        );
        for made_up in [
            "/pinbook.v2.BookService/Nope",
            "/pinbook.v2.X/Y",
            "/pinbook.v2.",
        ] {
            assert_eq!(label(made_up), Some(UNKNOWN), "{made_up}");
        }
        for other in ["/grpc.health.v1.Health/Check", "/", ""] {
            assert_eq!(label(other), None, "{other}");
        }
    }

    #[test]
    fn the_code_is_the_grpc_status_header_or_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_of(&headers), Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("16"));
        assert_eq!(status_of(&headers), Code::Unauthenticated);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_of(&headers), Code::NotFound);
        headers.insert("grpc-status", http::HeaderValue::from_static("x"));
        assert_eq!(status_of(&headers), Code::Ok);
    }
}
