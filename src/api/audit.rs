//! An organization's audit log, read by its administrators (roles `organization`,
//! `admin`) and super admins: filtered, newest first, in pages with an opaque cursor,
//! as JSON or as CSV. Other roles get 403 `forbidden`; another organization answers
//! 404 `organization_not_found` like one that does not exist. The log is append-only
//! (the database refuses changes) and never holds note text or secrets.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::csv;
use super::guard::hidden_org;
use super::schedule::parse_instant;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::audit_read::{ActionFilter, AuditQuery};

/// Default and largest page of the JSON listing.
const JSON_LIMITS: (i64, i64) = (50, 200);
/// Default and largest page of the CSV export.
const CSV_LIMITS: (i64, i64) = (1000, 10_000);
/// Header of a CSV page that has a next one: its cursor.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";
/// Query parameters the audit routes accept.
const PARAMS: [&str; 8] = [
    "actor",
    "subject",
    "subject_type",
    "action",
    "from",
    "to",
    "limit",
    "cursor",
];

/// Filters and paging of the audit routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct AuditParams {
    /// Only entries made by this user id.
    actor: Option<String>,
    /// Only entries about this record id (a therapist, a session, a note...).
    subject: Option<String>,
    /// Only entries about this kind of record, e.g. `therapist`.
    subject_type: Option<String>,
    /// This action exactly, or every action starting with it when it ends in `.` or
    /// `*` (`schedule.` or `schedule.*`).
    action: Option<String>,
    /// Only entries at or after this RFC 3339 instant.
    from: Option<String>,
    /// Only entries before this RFC 3339 instant.
    to: Option<String>,
    /// Entries per page: JSON 1–200 (default 50), CSV 1–10000 (default 1000).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    id: String,
    /// When, RFC 3339.
    at: String,
    actor_id: String,
    actor_role: String,
    action: String,
    /// Kind of the changed record.
    subject_type: String,
    /// Id of the changed record.
    subject_id: String,
    /// State before the change (JSON), if recorded.
    before: Option<Value>,
    /// State after the change (JSON), if recorded.
    after: Option<Value>,
}

/// A page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_audit_filter", message)
}

/// The opaque cursor of a row: its `(at, id)`, base64url.
fn cursor_of(record: &AuditRecord) -> String {
    B64.encode(format!("{}:{}", record.at, record.id))
}

fn parse_cursor(text: &str) -> ApiResult<(i64, String)> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this log handed out");
    let raw = B64.decode(text.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = raw.split_once(':').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((at, id.to_string()))
}

/// A filter value: absent, or non-empty text.
fn text(params: &HashMap<String, String>, name: &str) -> ApiResult<Option<String>> {
    match params.get(name).map(|v| v.trim()) {
        None => Ok(None),
        Some("") => Err(invalid(format!("{name} must not be empty"))),
        Some(v) => Ok(Some(v.to_string())),
    }
}

fn action_filter(text: Option<String>) -> Option<ActionFilter> {
    let action = text?;
    if let Some(prefix) = action.strip_suffix('*') {
        Some(ActionFilter::Prefix(prefix.to_string()))
    } else if action.ends_with('.') {
        Some(ActionFilter::Prefix(action))
    } else {
        Some(ActionFilter::Exact(action))
    }
}

/// The query of a request: every parameter checked (unknown ones refused, so a typo
/// does not silently widen the filter).
fn parse_query(org_id: &str, raw: Option<String>, limits: (i64, i64)) -> ApiResult<AuditQuery> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !PARAMS.contains(&name.as_ref()) {
            return Err(invalid(format!(
                "unknown parameter {name:?}; known: {}",
                PARAMS.join(", ")
            )));
        }
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(invalid(format!("{name} is given twice")));
        }
    }
    let limit = match params.get("limit") {
        None => limits.0,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=limits.1).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be between 1 and {}", limits.1),
                )
            })?,
    };
    let from_ms = text(&params, "from")?
        .map(|v| parse_instant("from", &v))
        .transpose()?;
    let to_ms = text(&params, "to")?
        .map(|v| parse_instant("to", &v))
        .transpose()?;
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if to <= from {
            return Err(invalid("to must be after from"));
        }
    }
    Ok(AuditQuery {
        organization_id: org_id.to_string(),
        actor_id: text(&params, "actor")?,
        target_id: text(&params, "subject")?,
        target_type: text(&params, "subject_type")?,
        action: action_filter(text(&params, "action")?),
        from_ms,
        to_ms,
        before: text(&params, "cursor")?
            .map(|c| parse_cursor(&c))
            .transpose()?,
        limit,
    })
}

/// Reads one page (one row more than asked, to know whether another page follows).
async fn read_page(
    state: &AppState,
    caller: &Caller,
    org_id: &str,
    raw: Option<String>,
    limits: (i64, i64),
) -> ApiResult<(Vec<AuditRecord>, Option<String>)> {
    let org = hidden_org(&state.store, caller, org_id).await?;
    let mut query = parse_query(&org.id, raw, limits)?;
    let limit = query.limit;
    query.limit = limit + 1;
    let mut rows = state.store.audit_page(&query).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Ok((rows, next))
}

fn state_json(raw: Option<String>) -> Option<Value> {
    raw.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn entry_view(r: AuditRecord) -> AuditEntryView {
    AuditEntryView {
        at: rfc3339(r.at),
        id: r.id,
        actor_id: r.actor_id,
        actor_role: r.actor_role,
        action: r.action,
        subject_type: r.target_type,
        subject_id: r.target_id,
        before: state_json(r.before_state),
        after: state_json(r.after_state),
    }
}

/// The organization's audit log, newest first.
#[utoipa::path(get, path = "/api/organizations/{id}/audit", tag = "audit",
    params(("id" = String, Path, description = "organization id"), AuditParams), security(("bearer" = [])),
    responses((status = 200, body = AuditPage),
        (status = 400, body = ErrorBody, description = "invalid_audit_filter, invalid_timestamp, invalid_limit, invalid_cursor"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "forbidden (not an administrator)"),
        (status = 404, body = ErrorBody, description = "organization_not_found (also another organization)")))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    let (rows, next_cursor) = read_page(&state, &caller, &org_id, query, JSON_LIMITS).await?;
    Ok(Json(AuditPage {
        entries: rows.into_iter().map(entry_view).collect(),
        next_cursor,
    }))
}

/// Header row of the CSV export.
pub const CSV_HEADER: [&str; 9] = [
    "id",
    "at",
    "actor_id",
    "actor_role",
    "action",
    "subject_type",
    "subject_id",
    "before",
    "after",
];

/// The organization's audit log as CSV (same filters and cursor; the next page's
/// cursor is in the `X-Next-Cursor` header).
#[utoipa::path(get, path = "/api/organizations/{id}/audit.csv", tag = "audit",
    params(("id" = String, Path, description = "organization id"), AuditParams), security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String, description = "header row, then one row per entry, newest first",
            headers(("x-next-cursor" = String, description = "cursor of the next page, when there is one"))),
        (status = 400, body = ErrorBody, description = "invalid_audit_filter, invalid_timestamp, invalid_limit, invalid_cursor"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "forbidden (not an administrator)"),
        (status = 404, body = ErrorBody, description = "organization_not_found (also another organization)")))]
pub async fn export_audit_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (rows, next_cursor) = read_page(&state, &caller, &org_id, query, CSV_LIMITS).await?;
    let mut body = csv::row(&CSV_HEADER);
    for r in rows {
        body.push_str(&csv::row(&[
            r.id,
            rfc3339(r.at),
            r.actor_id,
            r.actor_role,
            r.action,
            r.target_type,
            r.target_id,
            r.before_state.unwrap_or_default(),
            r.after_state.unwrap_or_default(),
        ]));
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        body,
    )
        .into_response();
    if let Some(cursor) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(NEXT_CURSOR_HEADER), cursor);
    }
    Ok(response)
}
