//! The REST API: `POST /checkout` (the seed's JSON contract), `GET /orders/{id}`
//! (as JSON), `GET /api/cluster`, the OpenAPI document, a liveness check
//! (`/healthz`) and a readiness check (`/readyz`).
//! Refusals map once to HTTP: invalid 400, fraud 403, out of stock 409,
//! unavailable 503. Every error is `{"error":{code,message,step,service,field}}`
//! ([`error_response`]).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{CheckoutOutcome, CheckoutRequest, Refusal};
use serde_json::json;

use crate::startup::Shop;
use crate::status::Lookup;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

pub async fn checkout(State(shop): State<Shop>, payload: Result<Json<CheckoutRequest>, JsonRejection>) -> Response {
    let mut request = match payload {
        Ok(Json(request)) => request,
        Err(rejection) => return malformed(&rejection),
    };
    // The seed's contract has no termsAccepted: an API client that leaves it out
    // collected the shopper's consent itself. An explicit false is refused.
    request.terms_accepted.get_or_insert(true);
    match shop.orchestrator.checkout(request).await {
        CheckoutOutcome::Approved(order) => (StatusCode::OK, Json(order)).into_response(),
        CheckoutOutcome::Refused(refusal) => refused(&refusal),
    }
}

/// A refusal as the REST API answers it; a 503 that asks to try again in a moment
/// says when (`Retry-After`, in seconds): every one but `order_unconfirmed`,
/// which asks to look at the order first.
pub fn refused(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.class.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let step = refusal.step.as_str();
    let mut response =
        error_response(status, &refusal.code, &refusal.message, step, &refusal.service, refusal.field.as_deref());
    if status == StatusCode::SERVICE_UNAVAILABLE && refusal.code != "order_unconfirmed" {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// The one shape of every error this API answers.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    step: &str,
    service: &str,
    field: Option<&str>,
) -> Response {
    let body = json!({"error": {"code": code, "message": message, "step": step, "service": service, "field": field}});
    (status, Json(body)).into_response()
}

/// A body that is not the checkout JSON. The message names the field and the
/// position but never echoes the value: it could be a card number.
fn malformed(rejection: &JsonRejection) -> Response {
    let text = rejection.body_text();
    let (status, code, field, message) = match rejection {
        JsonRejection::MissingJsonContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
            "Send the order as JSON with Content-Type: application/json.".to_owned(),
        ),
        JsonRejection::JsonDataError(_) => {
            let field = data_error_path(&text);
            let message = match &field {
                Some(field) => {
                    format!("The field {field} has the wrong type; see /openapi.json for the request's shape.")
                }
                None => "The body does not have the checkout request's shape; see /openapi.json.".to_owned(),
            };
            (StatusCode::BAD_REQUEST, "malformed_field", field, message)
        }
        JsonRejection::JsonSyntaxError(_) => (
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
            format!("The body is not valid JSON{}.", position(&text).map(|p| format!(" ({p})")).unwrap_or_default()),
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return crate::api_errors::too_large(),
        _ => (StatusCode::BAD_REQUEST, "unreadable_body", None, "The request body could not be read.".to_owned()),
    };
    error_response(status, code, &message, "input", "web", field.as_deref())
}

/// `items[0].quantity` from axum's "Failed to deserialize the JSON body into the
/// target type: items[0].quantity: invalid type: ..." (serde_path_to_error's path).
fn data_error_path(text: &str) -> Option<String> {
    let rest = text.split_once("target type: ")?.1;
    let (path, _) = rest.split_once(": ")?;
    let looks_like_path = !path.is_empty()
        && path != "."
        && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '_'));
    looks_like_path.then(|| path.to_owned())
}

/// `line 3 column 14` from a serde_json message.
fn position(text: &str) -> Option<String> {
    let at = text.rfind("line ")?;
    Some(text[at..].trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned())
}

/// `GET /orders/{id}` asked for JSON: `{"orderId","status","reason"}`, 404 for an
/// unknown id, 503 when the status cannot be read now. (Asked for HTML, the same
/// path is the order page: see `startup`.)
pub async fn order_status(shop: &Shop, order_id: &str) -> Response {
    let error = |status, code, message: String| error_response(status, code, &message, "order_status", "web", None);
    if !domain::order::is_order_id(order_id) {
        return error(StatusCode::BAD_REQUEST, "bad_order_id", "An order id has 1 to 64 characters.".to_owned());
    }
    match shop.status.look_up(order_id).await {
        Ok(Lookup::Found(status)) => (StatusCode::OK, Json(status)).into_response(),
        Ok(Lookup::Unknown { archived_before_ms }) => error(
            StatusCode::NOT_FOUND,
            "unknown_order",
            Lookup::unknown_message(order_id, archived_before_ms, platform::clock::unix_ms()),
        ),
        Err(message) => error(StatusCode::SERVICE_UNAVAILABLE, "status_unavailable", message),
    }
}

/// `GET /api/cluster`: every replica of both Raft groups and the queue's depth.
pub async fn cluster(State(shop): State<Shop>) -> Json<domain::ClusterStatus> {
    Json(shop.status.cluster().await)
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: whether a checkout could run now. Asks the standard gRPC health
/// check of every service a checkout calls, over the checkout's own channels:
/// 200 `ready`, or 503 naming the services that do not serve. (Also the floor
/// `loadgen --floor` compares checkouts with: the same server and connections,
/// none of the work.)
pub async fn readyz(State(shop): State<Shop>) -> Response {
    let not_serving = shop.orchestrator.clients().not_serving().await;
    if not_serving.is_empty() {
        return (StatusCode::OK, "ready").into_response();
    }
    let names: Vec<&str> = not_serving.iter().map(|(name, _)| *name).collect();
    let why: Vec<String> = not_serving.iter().map(|(name, why)| format!("{name}: {why}")).collect();
    let message = format!("Not ready: {}.", why.join("; "));
    error_response(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &message, "readiness", &names.join(","), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_path_in_a_data_error() {
        let text = "Failed to deserialize the JSON body into the target type: items[0].quantity: invalid type: string \"x\", expected i64 at line 1 column 40";
        assert_eq!(data_error_path(text).as_deref(), Some("items[0].quantity"));
        assert_eq!(
            data_error_path("Failed to deserialize the JSON body into the target type: invalid type: map"),
            None
        );
    }

    #[test]
    fn finds_the_position_of_a_syntax_error() {
        let text = "Failed to parse the request body as JSON: expected `,` or `}` at line 3 column 14";
        assert_eq!(position(text).as_deref(), Some("line 3 column 14"));
    }
}
