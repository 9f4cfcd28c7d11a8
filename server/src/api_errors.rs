//! One error shape, whatever refused the request. The REST handlers answer
//! `{"error":{code,message,step,service,field}}` themselves; what is refused before
//! a handler runs (a body over the limit, a wrong method, an unknown path) would get
//! axum's or tower-http's plain text. This middleware gives those the same shape on
//! the API's paths and to every client that does not ask for HTML (a browser asking
//! for a page still gets the page's own 404).
//!
//! A body announced as too large is read and thrown away (up to a bound) before the
//! 413 goes out with `Connection: close`: a client that writes its whole body before
//! it reads (Python's urllib, many HTTP libraries) would otherwise see the connection
//! reset instead of the answer. A client that asked `Expect: 100-continue` has sent
//! no body yet and gets the 413 at once.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use crate::rest::error_response;
use crate::startup::BODY_LIMIT_BYTES;

/// How much of an oversized body is read and discarded before answering 413; a
/// client sending more sees the connection closed.
const DRAIN_LIMIT_BYTES: usize = 16 * 1024 * 1024;
/// How long discarding may take.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

pub async fn one_shape(request: Request, next: Next) -> Response {
    let announced =
        request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > BODY_LIMIT_BYTES as u64) {
        // A client that waits for "100 Continue" (curl, for large bodies) has sent
        // nothing yet: reading would invite the upload, so answer at once.
        let waits_to_send = request.headers().get(header::EXPECT).is_some_and(|value| value == "100-continue");
        if !waits_to_send {
            let _ = tokio::time::timeout(DRAIN_DEADLINE, discard(request.into_body())).await;
        }
        let mut response = too_large();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let wants_json = is_api(request.uri().path()) || !app::api::accepts_html(request.headers());
    let response = next.run(request).await;
    if !wants_json || is_json(&response) {
        return response;
    }
    match response.status() {
        StatusCode::NOT_FOUND => {
            error(StatusCode::NOT_FOUND, "not_found", "There is nothing here; /openapi.json lists the API's paths.")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = response.headers().get(header::ALLOW).cloned();
            let mut refused = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This path does not take that method; /openapi.json lists what each path takes.",
            );
            if let Some(allowed) = allowed {
                refused.headers_mut().insert(header::ALLOW, allowed);
            }
            refused
        }
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ),
        _ => response,
    }
}

/// The REST API's paths (`/orders/{id}` is the API for clients that do not ask for
/// HTML, which the caller checks).
fn is_api(path: &str) -> bool {
    path == "/checkout"
        || path == "/openapi.json"
        || path == "/healthz"
        || path == "/readyz"
        || path.starts_with("/api/")
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    error_response(status, code, message, "input", "web", None)
}

pub(crate) fn too_large() -> Response {
    let limit = BODY_LIMIT_BYTES / (1024 * 1024);
    error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &format!("The request body is larger than {limit} MB."))
}

/// Reads `body` to its end, or until [`DRAIN_LIMIT_BYTES`], keeping nothing.
async fn discard(mut body: Body) {
    let mut read = 0_usize;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |data| data.len());
        if read > DRAIN_LIMIT_BYTES {
            break;
        }
    }
}
