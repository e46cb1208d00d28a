//! Shared harness of the REST tests: an isolated database per test (SQLite file or
//! PostgreSQL schema), the real router driven in-process, fixtures and assertions.
//!
//! `both_dbs!(name, |app| async move { ... })` generates `name_sqlite` and
//! `name_postgres`. PostgreSQL is `postgres://postgres@127.0.0.1:5432/test` (then
//! `root@`), or `THERAROOM_TEST_PG_URL`. When it is unreachable the PostgreSQL variant
//! prints a SKIP line and passes, unless `CI=true`: then it fails.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use theraroom::api::rate_limit::Rate;
use theraroom::api::{RateLimiters, RateLimits};
use theraroom::auth::{AuthGuard, JwtKeys, Role};
use theraroom::state::{AppState, NoLiveRooms};
use theraroom::store::Store;
use theraroom::turn::TurnIssuer;
use tower::ServiceExt;

/// JWT secret of the app under test (the server refuses secrets under 32 bytes).
pub const JWT_SECRET: &[u8] = b"rest-test-jwt-secret-0123456789abcdef";
/// TURN secret of the app under test.
pub const TURN_SECRET: &[u8] = b"rest-test-turn-secret-0123456789abcdef";
/// Failed authentications per address and minute in the app under test: high, so
/// suites that send many bad tokens are not rate limited (tests/rest/tokens.rs builds
/// an app with the real default to test the limit).
pub const TEST_AUTH_FAILURES_PER_MINUTE: u32 = 100_000;
/// TURN URIs handed out by the app under test.
pub const TURN_URIS: [&str; 2] = ["turn:127.0.0.1:3478?transport=udp", "stun:127.0.0.1:3478"];
/// TURN credential lifetime of the app under test.
pub const TURN_TTL: u64 = 600;

/// Peer address of requests sent with [`TestApp::send`].
pub const TEST_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);

/// Rate limits of the app under test: far above what any test sends, so that only
/// tests that lower them (with [`TestApp::with_limits`]) meet a 429.
pub fn test_limits() -> RateLimits {
    let rate = Rate {
        count: 100_000,
        per: std::time::Duration::from_secs(60),
    };
    RateLimits {
        guest_tokens: rate,
        share_lookups: rate,
        session_creation: rate,
        trust_proxy: false,
    }
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// True when running in CI (`CI=true`): missing services fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// An isolated database for one test.
pub struct TestDb {
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Schema { admin_url: String, schema: String },
}

fn pg_candidates() -> Vec<String> {
    match std::env::var("THERAROOM_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => vec![url],
        _ => vec![
            "postgres://postgres@127.0.0.1:5432/test".to_string(),
            "postgres://root@127.0.0.1:5432/test".to_string(),
        ],
    }
}

/// Finds the first PostgreSQL URL that answers; probed once per test process.
async fn pg_url() -> Result<String, String> {
    static FOUND: tokio::sync::OnceCell<Result<String, String>> =
        tokio::sync::OnceCell::const_new();
    FOUND
        .get_or_init(|| async {
            let mut errors = Vec::new();
            for url in pg_candidates() {
                let attempt =
                    tokio::time::timeout(std::time::Duration::from_secs(15), Store::connect(&url))
                        .await;
                match attempt {
                    Ok(Ok(store)) => {
                        let pinged = store.ping().await;
                        store.close().await;
                        match pinged {
                            Ok(()) => return Ok(url),
                            Err(e) => errors.push(format!("{url}: {e}")),
                        }
                    }
                    Ok(Err(e)) => errors.push(format!("{url}: {e}")),
                    Err(_) => errors.push(format!("{url}: connect timed out")),
                }
            }
            Err(errors.join("; "))
        })
        .await
        .clone()
}

async fn pg_admin() -> Result<(String, Store), String> {
    let url = pg_url().await?;
    let store = Store::connect(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok((url, store))
}

fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Gives a test store a keyring of one random data key (notes are sealed at rest).
pub fn install_test_keys(store: &Store) {
    use theraroom::data_keys::{DataKey, Keyring};
    store.install_data_keys(Keyring::single(DataKey::generate()));
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("theraroom-rest-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        install_test_keys(&store);
        TestDb {
            store,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A fresh schema in PostgreSQL database `test`, or `None` (after a loud SKIP
    /// line) when PostgreSQL is unreachable outside CI.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let (admin_url, admin) = match pg_admin().await {
            Ok(found) => found,
            Err(err) => {
                if in_ci() {
                    panic!(
                        "PostgreSQL is required when CI=true but is unreachable at 127.0.0.1:5432 \
                         (database `test`, user postgres or root): {err}"
                    );
                }
                eprintln!(
                    "\n!!!!!!!! SKIP {test}: PostgreSQL unreachable (127.0.0.1:5432, database `test`): {err}\n\
                     !!!!!!!! (set CI=true to make this a failure)\n"
                );
                return None;
            }
        };
        let schema = format!("rest_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(admin.pool())
            .await
            .expect("create schema");
        admin.close().await;
        let store = Store::connect(&with_search_path(&admin_url, &schema))
            .await
            .expect("connect to test schema");
        // The isolation of the tests rests on this: every connection uses its own schema.
        let (current,): (String,) = sqlx::query_as("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(store.pool())
            .await
            .expect("current_schema()");
        assert_eq!(
            current, schema,
            "search_path did not apply to the test connection"
        );
        store.migrate().await.expect("migrate postgres");
        install_test_keys(&store);
        Some(TestDb {
            store,
            cleanup: Cleanup::Schema { admin_url, schema },
        })
    }

    /// Closes the pool and removes the database.
    pub async fn cleanup(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { admin_url, schema } => {
                if let Ok(admin) = Store::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(admin.pool())
                        .await;
                    admin.close().await;
                }
            }
        }
    }
}

/// A response: status and body (JSON when it parses, else `Value::Null`).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        &self.json
    }

    /// Asserts an error response: status, JSON error shape, and code.
    #[track_caller]
    pub fn expect_err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.json["error"]["code"].as_str(),
            Some(code),
            "unexpected error code; body: {}",
            self.text
        );
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.text
        );
        &self.json
    }

    /// The error message of an error response.
    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
}

/// A user of the app under test and their token.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub token: String,
}

/// An organization with one administrator (role `organization`).
#[derive(Debug, Clone)]
pub struct OrgFx {
    pub id: String,
    pub admin: Person,
}

/// The app under test: router, store, keys.
pub struct TestApp {
    pub db: Db,
    pub router: Router,
    pub store: Store,
    pub jwt: JwtKeys,
    pub turn: TurnIssuer,
    pub auth_guard: AuthGuard,
    pub accounts: theraroom::accounts::AccountsConfig,
}

impl TestApp {
    /// Builds the real REST router over `store`.
    pub fn new(db: Db, store: Store) -> TestApp {
        let jwt = JwtKeys::new(JWT_SECRET);
        let turn = TurnIssuer::new(
            TURN_SECRET.to_vec(),
            TURN_URIS.iter().map(|s| s.to_string()).collect(),
            TURN_TTL,
        );
        let limit = std::num::NonZeroU32::new(TEST_AUTH_FAILURES_PER_MINUTE).expect("non-zero");
        let auth_guard = AuthGuard::new(limit);
        let accounts = theraroom::accounts::AccountsConfig::default();
        let state = AppState {
            store: store.clone(),
            jwt: jwt.clone(),
            turn: turn.clone(),
            live: Arc::new(NoLiveRooms),
            auth_guard: auth_guard.clone(),
            accounts: accounts.clone(),
        };
        let router = theraroom::api::router_with(state, &RateLimiters::new(&test_limits())).0;
        TestApp {
            db,
            router,
            store,
            jwt,
            turn,
            auth_guard,
            accounts,
        }
    }

    /// Rebuilds the router with other rate limits (fresh limiter state).
    pub fn with_limits(mut self, limits: RateLimits) -> TestApp {
        self.router = theraroom::api::router_with(self.state(), &RateLimiters::new(&limits)).0;
        self
    }

    /// The state the router was built from (for building other routers in tests).
    pub fn state(&self) -> AppState {
        AppState {
            store: self.store.clone(),
            jwt: self.jwt.clone(),
            turn: self.turn.clone(),
            live: Arc::new(NoLiveRooms),
            auth_guard: self.auth_guard.clone(),
            accounts: self.accounts.clone(),
        }
    }

    /// Sends a raw request through the router, from [`TEST_PEER`] unless the request
    /// already carries a `ConnectInfo` (the rate-limit key).
    pub async fn send(&self, mut req: Request<Body>) -> Resp {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut().insert(ConnectInfo(TEST_PEER));
        }
        send_to(&self.router, req).await
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    /// POST with an optional JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        self.call(Method::POST, path, token, body).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::DELETE, path, token, None).await
    }

    /// POST with a raw body and content type (for malformed JSON).
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Resp {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(builder.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// Mints a token.
    pub fn token(&self, sub: &str, role: Role, org: Option<&str>, session: Option<&str>) -> String {
        self.jwt.issue(sub, role, org, session, 3600).0
    }

    /// Creates an organization and its administrator (role `organization`).
    pub async fn org(&self, name: &str, theraptrack_controlled: bool) -> OrgFx {
        let org = self
            .store
            .create_organization(name, theraptrack_controlled)
            .await
            .expect("create organization");
        let admin = self
            .user(&org.id, Role::Organization, &format!("{name} admin"))
            .await;
        OrgFx { id: org.id, admin }
    }

    /// Creates a platform operator (role `super_admin`, no organization).
    pub async fn super_admin(&self, name: &str) -> Person {
        let user = self
            .store
            .create_user(None, Role::SuperAdmin, name, &unique_email(name))
            .await
            .expect("create super admin");
        let token = self.token(&user.id, Role::SuperAdmin, None, None);
        Person { id: user.id, token }
    }

    /// Creates a plain user (organization, admin, ...) of an organization.
    pub async fn user(&self, org_id: &str, role: Role, name: &str) -> Person {
        let user = self
            .store
            .create_user(Some(org_id), role, name, &unique_email(name))
            .await
            .expect("create user");
        let token = self.token(&user.id, role, Some(org_id), None);
        Person { id: user.id, token }
    }

    /// Creates a therapist of an organization.
    pub async fn therapist(&self, org_id: &str, name: &str) -> Person {
        let t = self
            .store
            .create_therapist(org_id, name, &unique_email(name))
            .await
            .expect("create therapist");
        let token = self.token(&t.id, Role::Therapist, Some(org_id), None);
        Person { id: t.id, token }
    }

    /// Creates a client of an organization, optionally assigned to a therapist.
    pub async fn client(&self, org_id: &str, therapist_id: Option<&str>, name: &str) -> Person {
        let c = self
            .store
            .create_client(org_id, therapist_id, name, &unique_email(name))
            .await
            .expect("create client");
        let token = self.token(&c.id, Role::Client, Some(org_id), None);
        Person { id: c.id, token }
    }

    /// Creates a session as `therapist` through the API; returns its JSON.
    pub async fn session(&self, therapist: &Person, name: &str) -> Value {
        let resp = self
            .post(
                "/api/sessions",
                Some(&therapist.token),
                Some(serde_json::json!({"session_name": name, "max_participants": 4})),
            )
            .await;
        resp.expect(201).clone()
    }

    /// Gets a guest token through a share link; returns the JSON (`token`, `session_id`, ...).
    pub async fn guest(&self, share_token: &str, name: &str) -> Value {
        self.post(
            &format!("/api/join/{share_token}/guest"),
            None,
            Some(serde_json::json!({"name": name})),
        )
        .await
        .expect(201)
        .clone()
    }

    /// Moves a session's expiry into the past (directly in the database).
    pub async fn expire_session(&self, session_id: &str) {
        let past = chrono::Utc::now().timestamp_millis() - 60_000;
        sqlx::query("UPDATE instant_sessions SET expires_at = $1 WHERE id = $2")
            .bind(past)
            .bind(session_id)
            .execute(self.store.pool())
            .await
            .expect("expire session");
    }

    /// Sets a therapist's video switch directly in the database (no API, no audit).
    pub async fn set_therapist_video_db(&self, therapist_id: &str, enabled: bool) {
        let mut conn = self.store.pool().acquire().await.expect("acquire");
        theraroom::store::users::set_therapist_video(&mut conn, therapist_id, enabled)
            .await
            .expect("set therapist video");
    }

    /// Counts rows of a table matching `where_clause` with one text parameter.
    pub async fn count(&self, table: &str, where_clause: &str, param: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM {table} WHERE {where_clause}"
        ))
        .bind(param)
        .fetch_one(self.store.pool())
        .await
        .expect("count");
        n
    }

    /// Audit actions recorded about one target, oldest first.
    pub async fn audit_actions(&self, target_type: &str, target_id: &str) -> Vec<String> {
        self.store
            .audit_for_target(target_type, target_id)
            .await
            .expect("audit_for_target")
            .into_iter()
            .map(|r| r.action)
            .collect()
    }
}

/// Sends a request through any router and reads the body.
pub async fn send_to(router: &Router, req: Request<Body>) -> Resp {
    let resp = router
        .clone()
        .oneshot(req)
        .await
        .expect("router is infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        json,
        text,
    }
}

/// A unique e-mail address derived from a name.
pub fn unique_email(name: &str) -> String {
    let local: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    format!(
        "{local}-{}@test.theraroom.invalid",
        uuid::Uuid::new_v4().simple()
    )
}

/// Runs `body` against a fresh database of kind `db`, then removes the database (also
/// when the body panics, after which the panic is resumed).
pub async fn run_test<F, Fut>(db: Db, name: &str, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::FutureExt;
    let test_db = match db {
        Db::Sqlite => TestDb::sqlite().await,
        Db::Postgres => match TestDb::postgres(name).await {
            Some(test_db) => test_db,
            None => return,
        },
    };
    let app = TestApp::new(db, test_db.store.clone());
    let outcome = std::panic::AssertUnwindSafe(body(app)).catch_unwind().await;
    test_db.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Generates `<name>::sqlite` and `<name>::postgres` tests from one body.
macro_rules! both_dbs {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_test(
                    $crate::common::Db::Sqlite,
                    concat!(stringify!($name), "::sqlite"),
                    |$app| $body,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_test(
                    $crate::common::Db::Postgres,
                    concat!(stringify!($name), "::postgres"),
                    |$app| $body,
                )
                .await;
            }
        }
    };
}
