//! Property tests of the REST JSON extractors: arbitrary bytes and arbitrary JSON
//! (with the routes' own field names) as bodies of every JSON-body route, driven
//! through the real router over SQLite with a valid token of the right role.
//!
//! Every answer must be: not 5xx, a status the OpenAPI document lists for that
//! operation (415 is global: the extractor's), a JSON error body for every 4xx, and
//! a code from the documented set: the extractor codes (`invalid_json`,
//! `unsupported_media_type`, `payload_too_large`), the access codes of guards and
//! policies, the name codes, or the codes of the route's handler module
//! (`ROUTE_CODES`).
//!
//! The routes come from the OpenAPI document (operations with a `requestBody`), so a
//! new JSON route is covered, and must be added to `ROUTE_CODES`, automatically.
//! Cases: `PROPTEST_CASES` (default 10,000 per property); the seed is printed at the
//! start, rerun with `PROPTEST_RNG_SEED=<seed>`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, Method, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Map;

use super::*;

/// Codes of the JSON extractor, possible on every JSON route.
const EXTRACTOR_CODES: [&str; 3] = [
    "invalid_json",
    "unsupported_media_type",
    "payload_too_large",
];

/// Access codes of the guards and policies every authenticated route may answer.
const ACCESS_CODES: &[&str] = &[
    "unauthorized",
    "invalid_token",
    "token_expired",
    "forbidden",
    "not_found",
    "session_not_found",
    "removed",
    "session_ended",
    "therapist_disabled",
    "organization_disabled",
    "organization_not_found",
    "not_organization_owner",
    "not_theraptrack_controlled",
    "therapist_not_found",
    "therapist_not_in_organization",
    "conflict",
    "invalid_reference",
];

/// Codes of `validate_name` at the routes that check names.
const NAME_CODES: &[&str] = &[
    "invalid_name",
    "invalid_session_name",
    "invalid_community_name",
    "invalid_title",
];

/// Codes each handler module can answer (its `ApiError` codes and validation codes).
const SESSIONS_CODES: &[&str] = &[
    "forbidden",
    "invalid_expiry",
    "invalid_kind",
    "invalid_max_participants",
    "invalid_session_name",
    "session_already_ended",
    "session_ended",
    "session_not_found",
];
const JOIN_CODES: &[&str] = &["guests_not_allowed", "invalid_name"];
const VIDEO_SETTINGS_CODES: &[&str] = &["invalid_therapist_ids", "invalid_reason"];
const WEBHOOK_CODES: &[&str] = &[
    "invalid_webhook_url",
    "invalid_webhook_events",
    "invalid_webhook_secret",
    "organization_not_found",
];
const GROUPS_COMMUNITIES_CODES: &[&str] = &[
    "community_exists",
    "community_not_found",
    "invalid_community_name",
    "invalid_description",
    "invalid_member_role",
    "not_a_member",
    "not_a_moderator",
    "not_organization_owner",
    "organization_required",
    "user_not_found",
    "user_not_in_organization",
];
const GROUPS_CODES: &[&str] = &[
    "already_invited",
    "already_joined",
    "capacity_below_participants",
    "empty_update",
    "external_meeting_link",
    "forbidden",
    "group_session_not_found",
    "invalid_action",
    "invalid_attendance_status",
    "invalid_description",
    "invalid_duration",
    "invalid_location",
    "invalid_max_participants",
    "invalid_meeting_link",
    "invalid_message",
    "invalid_scheduled_at",
    "invalid_session_type",
    "invalid_status",
    "invalid_title",
    "invitation_accepted",
    "invitation_already_answered",
    "invitation_not_declined",
    "invitation_not_found",
    "last_invitation",
    "location_required",
    "not_a_member",
    "not_a_moderator",
    "not_invited",
    "not_joined",
    "not_virtual",
    "outside_working_hours",
    "participant_not_found",
    "registration_cancelled",
    "schedule_conflict",
    "scheduled_in_past",
    "session_already_approved",
    "session_already_cancelled",
    "session_cancelled",
    "session_completed",
    "session_ended",
    "session_full",
    "session_not_open",
    "session_not_started",
    "session_started",
    "therapist_not_in_community",
    "therapist_time_off",
    "therapists_required",
    "too_many_therapists",
];
const SCHEDULE_CODES: &[&str] = &[
    "client_not_found",
    "client_not_in_organization",
    "forbidden",
    "hold_already_confirmed",
    "hold_expired",
    "hold_not_active",
    "hold_not_found",
    "hold_released",
    "idempotency_key_reused",
    "invalid_hold_seconds",
    "invalid_idempotency_key",
    "invalid_recurrence",
    "invalid_reschedule",
    "invalid_service_code",
    "invalid_time_range",
    "invalid_time_zone",
    "invalid_timestamp",
    "not_own_calendar",
    "not_your_client",
    "outside_working_hours",
    "overlapping_occurrences",
    "reschedule_mismatch",
    "scheduled_session_not_found",
    "session_cancelled",
    "session_completed",
    "slot_conflict",
    "start_in_past",
    "therapist_not_found",
    "therapist_not_in_organization",
    "therapist_time_off",
    "too_many_occurrences",
];
const SCHEDULE_SESSIONS_CODES: &[&str] = &[
    "forbidden",
    "invalid_attendance",
    "invalid_limit",
    "invalid_reason",
    "invalid_scope",
    "invalid_service_code",
    "invalid_status",
    "not_a_participant",
    "not_own_calendar",
    "session_already_cancelled",
    "session_cancelled",
    "session_completed",
    "session_not_cancelled",
    "session_not_started",
    "session_over",
    "too_early",
];

const SCHEDULE_NOTES_CODES: &[&str] = &[
    "forbidden",
    "invalid_note",
    "not_note_author",
    "note_not_found",
];

const WORKING_HOURS_CODES: &[&str] = &[
    "invalid_date",
    "invalid_interval",
    "invalid_label",
    "invalid_time_of_day",
    "invalid_time_range",
    "invalid_time_zone",
    "invalid_timestamp",
    "invalid_weekday",
    "overlapping_intervals",
    "too_many_intervals",
];

const ACCOUNTS_CODES: &[&str] = &[
    "email_taken",
    "forbidden",
    "invalid_credentials",
    "invalid_email",
    "invalid_name",
    "invalid_refresh_token",
    "invalid_role",
    "invitation_expired",
    "invitation_not_found",
    "invitation_used",
    "organization_not_found",
    "person_not_found",
    "therapist_not_found",
    "too_many_attempts",
    "weak_password",
];

/// Which handler module answers each JSON-body route, keyed by `METHOD path` as in the
/// OpenAPI document.
const ROUTE_CODES: &[(&str, &[&str])] = &[
    ("POST /api/auth/login", ACCOUNTS_CODES),
    ("POST /api/auth/refresh", ACCOUNTS_CODES),
    ("POST /api/organizations", ACCOUNTS_CODES),
    ("POST /api/organizations/{id}/invitations", ACCOUNTS_CODES),
    ("POST /api/invitations/inspect", ACCOUNTS_CODES),
    ("POST /api/invitations/accept", ACCOUNTS_CODES),
    (
        "PATCH /api/organizations/{id}/therapists/{therapist_id}",
        ACCOUNTS_CODES,
    ),
    ("PATCH /api/clients/{id}", ACCOUNTS_CODES),
    ("POST /api/sessions", SESSIONS_CODES),
    ("PATCH /api/sessions/{id}", SESSIONS_CODES),
    ("POST /api/join/{share_token}/guest", JOIN_CODES),
    (
        "PUT /api/organizations/{id}/video-settings",
        VIDEO_SETTINGS_CODES,
    ),
    (
        "PUT /api/organizations/{id}/therapists/{therapist_id}/video-settings",
        VIDEO_SETTINGS_CODES,
    ),
    (
        "PUT /api/organizations/{id}/therapists/video-settings/bulk",
        VIDEO_SETTINGS_CODES,
    ),
    ("PUT /api/organizations/{id}/webhook", WEBHOOK_CODES),
    ("POST /api/communities", GROUPS_COMMUNITIES_CODES),
    (
        "POST /api/communities/{id}/members",
        GROUPS_COMMUNITIES_CODES,
    ),
    ("POST /api/group-sessions", GROUPS_CODES),
    ("PATCH /api/group-sessions/{id}", GROUPS_CODES),
    ("POST /api/group-sessions/{id}/invitations", GROUPS_CODES),
    (
        "POST /api/group-sessions/therapist/invitations/{id}/respond",
        GROUPS_CODES,
    ),
    (
        "PUT /api/group-sessions/{id}/participants/{participant_id}/attendance",
        GROUPS_CODES,
    ),
    ("POST /api/schedule/holds", SCHEDULE_CODES),
    (
        "POST /api/schedule/holds/{hold_key}/confirm",
        SCHEDULE_CODES,
    ),
    (
        "PUT /api/schedule/sessions/{id}/service-code",
        SCHEDULE_SESSIONS_CODES,
    ),
    (
        "PUT /api/therapists/{id}/working-hours",
        WORKING_HOURS_CODES,
    ),
    ("POST /api/therapists/{id}/time-off", WORKING_HOURS_CODES),
    (
        "POST /api/schedule/sessions/{id}/cancel",
        SCHEDULE_SESSIONS_CODES,
    ),
    (
        "PUT /api/schedule/sessions/{id}/attendance",
        SCHEDULE_SESSIONS_CODES,
    ),
    (
        "POST /api/schedule/sessions/{id}/notes",
        SCHEDULE_NOTES_CODES,
    ),
    (
        "PUT /api/schedule/sessions/{id}/notes/{note_id}",
        SCHEDULE_NOTES_CODES,
    ),
];

fn config(name: &str) -> Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(rand::random::<u64>);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(10_000);
    eprintln!("proptest {name}: {cases} cases, seed {seed} (rerun: PROPTEST_RNG_SEED={seed})");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // A failure is reported with its input and seed; no regression file is
        // written into the source tree by the REST suite.
        failure_persistence: None,
        ..Config::default()
    }
}

/// One JSON-body route with concrete path, caller and what it may answer.
#[derive(Debug, Clone)]
struct Route {
    key: String,
    method: Method,
    uri: String,
    token: Option<String>,
    statuses: Vec<u16>,
    codes: Vec<&'static str>,
}

/// The app under test and its JSON routes.
struct World {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    db: Option<common::TestDb>,
    routes: Vec<Route>,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let db = rt.block_on(common::TestDb::sqlite());
        let app = TestApp::new(common::Db::Sqlite, db.store.clone());
        let routes = rt.block_on(routes(&app));
        World {
            rt,
            app,
            db: Some(db),
            routes,
        }
    }

    fn send(&self, route: &Route, content_type: Option<&str>, body: Vec<u8>) -> common::Resp {
        let mut req = Request::builder()
            .method(route.method.clone())
            .uri(&route.uri);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(token) = &route.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Body::from(body)).expect("request");
        self.rt.block_on(self.app.send(req))
    }

    fn check(&self, route: &Route, resp: &common::Resp) -> Result<(), TestCaseError> {
        let status = resp.status.as_u16();
        prop_assert!(
            status < 500,
            "{} answered {status}: {}",
            route.key,
            resp.text
        );
        prop_assert!(
            route.statuses.contains(&status) || status == 415,
            "{} answered undocumented {status}: {}",
            route.key,
            resp.text
        );
        if status >= 400 {
            let code = resp.json["error"]["code"].as_str();
            prop_assert!(
                code.is_some(),
                "{} without JSON error: {}",
                route.key,
                resp.text
            );
            let code = code.unwrap_or_default();
            prop_assert!(
                EXTRACTOR_CODES.contains(&code)
                    || ACCESS_CODES.contains(&code)
                    || NAME_CODES.contains(&code)
                    || route.codes.contains(&code),
                "{} answered undocumented code {code}: {}",
                route.key,
                resp.text
            );
            prop_assert!(!resp.message().is_empty());
        }
        Ok(())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            self.rt.block_on(db.cleanup());
        }
    }
}

/// Fixtures, then every operation with a request body from the OpenAPI document.
async fn routes(app: &TestApp) -> Vec<Route> {
    let org = app.org("Prop Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Prop").await;
    let client = app
        .client(&org.id, Some(&therapist.id), "Prop Client")
        .await;
    let session = app.session(&therapist, "Prop room").await;
    let share = session["share_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let community = app
        .post(
            "/api/communities",
            Some(&org.admin.token),
            Some(json!({"name": "Prop community"})),
        )
        .await;
    let community_id = community.json["id"].as_str().unwrap_or("c").to_string();
    let start = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let end =
        (chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(1)).to_rfc3339();
    let hold = app
        .post(
            "/api/schedule/holds",
            Some(&therapist.token),
            Some(json!({"therapist_id": therapist.id, "client_id": client.id, "start": start, "end": end})),
        )
        .await;
    let hold_key = hold.json["hold_key"].as_str().unwrap_or("h").to_string();
    let booked = app
        .post(
            &format!("/api/schedule/holds/{hold_key}/confirm"),
            Some(&therapist.token),
            None,
        )
        .await;
    let scheduled_id = booked.json["sessions"][0]["id"]
        .as_str()
        .unwrap_or("s")
        .to_string();

    let doc = app.get("/api/openapi.json", None).await.json;
    let codes: BTreeMap<&str, &[&str]> = ROUTE_CODES.iter().copied().collect();
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for (path, item) in paths {
        let Some(ops) = item.as_object() else {
            continue;
        };
        for (method, op) in ops {
            if op.get("requestBody").is_none() {
                continue;
            }
            let key = format!("{} {path}", method.to_uppercase());
            let id = if path.starts_with("/api/organizations") {
                org.id.as_str()
            } else if path.starts_with("/api/communities") {
                community_id.as_str()
            } else if path.starts_with("/api/schedule/sessions") {
                scheduled_id.as_str()
            } else if path.starts_with("/api/therapists") {
                therapist.id.as_str()
            } else {
                "unknown-id"
            };
            let uri = path
                .replace("{id}", id)
                .replace("{therapist_id}", &therapist.id)
                .replace("{share_token}", &share)
                .replace("{participant_id}", &client.id)
                .replace("{note_id}", "unknown-note");
            let token = if path.starts_with("/api/join") {
                None
            } else if path.starts_with("/api/organizations") || path.starts_with("/api/communities")
            {
                Some(org.admin.token.clone())
            } else {
                Some(therapist.token.clone())
            };
            let statuses = op["responses"]
                .as_object()
                .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
                .unwrap_or_default();
            let route_codes = codes.get(key.as_str()).copied().unwrap_or_else(|| {
                panic!("{key} reads a JSON body but is missing from ROUTE_CODES")
            });
            out.push(Route {
                key,
                method: Method::from_bytes(method.to_uppercase().as_bytes())
                    .unwrap_or(Method::POST),
                uri,
                token,
                statuses,
                codes: route_codes.to_vec(),
            });
        }
    }
    assert_eq!(
        out.len(),
        ROUTE_CODES.len(),
        "ROUTE_CODES lists a route the document does not have"
    );
    out
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        8 => Just(Some("application/json")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(Some("text/plain")),
        1 => Just(None),
        1 => Just(Some("application/vnd.api+json")),
    ]
}

/// Field names the JSON routes read, so arbitrary objects hit real fields with
/// wrong types, huge numbers and odd strings.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "session_name", "max_participants", "expires_in_minutes", "kind",
            "enabled", "therapist_ids", "description", "user_id", "role", "title",
            "start", "end", "start_time", "end_time", "time_zone", "hold_seconds",
            "occurrences", "recurrence", "community_id", "invitees", "client_ids",
            "therapist_id", "client_id", "status", "attendance", "reason", "text",
            "accept", "response", "frequency", "count", "until", "interval",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "2030-01-01T10:00:00Z",
            "2030-01-01T09:00:00Z",
            "Europe/Berlin",
            "weekly",
            "instant",
            "group",
            "present",
            "absent",
            "accept",
            "decline",
            "member",
            "moderator",
            "\u{200B}",
            "\u{202E}x",
            "",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|f| Value::Object(f.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Mostly objects with real field names; sometimes any JSON value.
fn json_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec((field_name(), json_value()), 0..6)
            .prop_map(|f| Value::Object(f.into_iter().collect::<Map<_, _>>())),
        1 => json_value(),
    ]
}

#[test]
fn json_routes_answer_arbitrary_bytes_with_documented_errors() {
    let world = World::new();
    let n = world.routes.len();
    proptest!(config("rest_arbitrary_bytes"), |(
        which in 0..n,
        ct in content_type(),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            any::<String>().prop_map(String::into_bytes),
        ],
    )| {
        let route = &world.routes[which];
        let resp = world.send(route, ct, body);
        world.check(route, &resp)?;
    });
}

#[test]
fn json_routes_answer_arbitrary_json_with_documented_errors() {
    let world = World::new();
    let n = world.routes.len();
    proptest!(config("rest_arbitrary_json"), |(
        which in 0..n,
        ct in content_type(),
        body in json_body(),
    )| {
        let route = &world.routes[which];
        let resp = world.send(route, ct, body.to_string().into_bytes());
        world.check(route, &resp)?;
    });
}
