//! Adds the responses that layers (not handlers) produce to the OpenAPI document:
//! 429 `rate_limited` on the rate-limited routes and on every authenticated route (the
//! failed-authentication limit), 429 `too_many_attempts` on sign-in, and 413 `payload_too_large` on every
//! route that reads a JSON body. Done here, once, so handler annotations cannot
//! forget them.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Header, OpenApi, Ref, RefOr, Response, ResponseBuilder};

use super::extract::MAX_BODY_BYTES;
use super::rate_limit::LIMITED_ROUTES;

fn error_response(description: String) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn too_many_requests(limit: &str) -> Response {
    error_response(format!(
        "`rate_limited`: too many requests from this client IP (limit `{limit}`, see the \
         `--rate-*` settings); retry after `Retry-After` seconds"
    ))
    .header(
        "Retry-After",
        Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
    )
    .build()
}

fn failed_auth_limited() -> Response {
    error_response(
        "`rate_limited`: too many failed authentications from this client IP (see \
         `--auth-failures-per-minute`); retry after `Retry-After` seconds"
            .to_string(),
    )
    .header(
        "Retry-After",
        Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
    )
    .build()
}

fn sign_ins_limited() -> Response {
    error_response(
        "`too_many_attempts`: too many failed sign-ins for this e-mail address or from this \
         client IP (5 in 15 minutes); retry after `Retry-After` seconds"
            .to_string(),
    )
    .header(
        "Retry-After",
        Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
    )
    .build()
}

fn payload_too_large() -> Response {
    error_response(format!(
        "`payload_too_large`: the body is over {MAX_BODY_BYTES} bytes"
    ))
    .build()
}

fn operation_mut<'a>(doc: &'a mut OpenApi, path: &str, method: &str) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "delete" => item.delete.as_mut(),
        "patch" => item.patch.as_mut(),
        _ => None,
    }
}

/// Adds 429 and 413 responses where they apply.
pub fn document_limits(doc: &mut OpenApi) {
    for (method, path, limit) in LIMITED_ROUTES {
        if let Some(op) = operation_mut(doc, path, method) {
            op.responses
                .responses
                .insert("429".into(), RefOr::T(too_many_requests(limit)));
        } else {
            tracing::error!(
                method,
                path,
                "rate-limited route missing from the OpenAPI doc"
            );
        }
    }
    if let Some(op) = operation_mut(doc, "/api/auth/login", "post") {
        op.responses
            .responses
            .insert("429".into(), RefOr::T(sign_ins_limited()));
    }
    for item in doc.paths.paths.values_mut() {
        for op in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if op.request_body.is_some() {
                op.responses
                    .responses
                    .insert("413".into(), RefOr::T(payload_too_large()));
            }
            // Every authenticated route shares the failed-authentication limit.
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                op.responses
                    .responses
                    .entry("429".into())
                    .or_insert_with(|| RefOr::T(failed_auth_limited()));
            }
        }
    }
}
