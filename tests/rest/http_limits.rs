//! HTTP hardening: per-IP rate limits (429 + Retry-After), 413 for oversized bodies,
//! `Cache-Control: no-store` on API responses, HSTS by setting, and the name rule.

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use theraroom::api::rate_limit::Rate;
use theraroom::api::{RateLimiters, RateLimits, MAX_BODY_BYTES};
use theraroom::app::HttpOptions;
use theraroom::headers::{HeaderPolicy, HSTS_VALUE};
use tower::ServiceExt;

use super::*;

fn limits(guest: &str, lookups: &str, sessions: &str) -> RateLimits {
    RateLimits {
        guest_tokens: guest.parse().unwrap(),
        share_lookups: lookups.parse().unwrap(),
        session_creation: sessions.parse().unwrap(),
        trust_proxy: false,
    }
}

fn generous() -> Rate {
    "100000/min".parse().unwrap()
}

/// A request from another client IP.
fn from_peer(mut req: Request<Body>, peer: &str) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    req
}

fn guest_request(share: &str, name: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("/api/join/{share}/guest"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "name": name }).to_string()))
        .unwrap()
}

/// Asserts a 429 with our body and a usable Retry-After.
#[track_caller]
fn assert_rate_limited(resp: &axum::http::Response<Body>) {
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get(header::RETRY_AFTER)
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

/// Sends through the router keeping headers (the TestApp helper reads only the body).
async fn raw(app: &TestApp, mut req: Request<Body>) -> axum::http::Response<Body> {
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
        req.extensions_mut().insert(ConnectInfo(common::TEST_PEER));
    }
    app.router.clone().oneshot(req).await.unwrap()
}

async fn body_json(resp: axum::http::Response<Body>) -> Value {
    use http_body_util::BodyExt;
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

both_dbs!(guest_tokens_are_rate_limited_per_ip, |app| async move {
    let org = app.org("Limit Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Limit").await;
    let s = app.session(&therapist, "Busy door").await;
    let share = s["share_token"].as_str().unwrap().to_string();
    let app = app.with_limits(limits("3/min", "100000/min", "100000/min"));

    for i in 0..3 {
        app.guest(&share, &format!("Guest {i}")).await;
    }
    let resp = raw(&app, guest_request(&share, "Guest 4")).await;
    assert_rate_limited(&resp);
    let body = body_json(resp).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].as_str().unwrap().contains("retry"));
    // Refused requests created nothing.
    assert_eq!(
        app.count("guests", "session_id = $1", s["id"].as_str().unwrap())
            .await,
        3
    );
    // Another client is not affected.
    let other = app
        .send(from_peer(
            guest_request(&share, "Neighbour"),
            "192.0.2.50:1234",
        ))
        .await;
    other.expect(201);
    // Unknown share tokens count too: no enumeration past the limit.
    let probe = raw(&app, guest_request("no-such-link", "Probe")).await;
    assert_rate_limited(&probe);
});

both_dbs!(share_lookups_are_rate_limited_per_ip, |app| async move {
    let org = app.org("Lookup Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Lookup").await;
    let s = app.session(&therapist, "Looked up").await;
    let share = s["share_token"].as_str().unwrap().to_string();
    let app = app.with_limits(limits("100000/min", "2/min", "100000/min"));

    app.get(&format!("/api/join/{share}"), None)
        .await
        .expect(200);
    app.get("/api/join/guessed-token", None)
        .await
        .expect_err(404, "session_not_found");
    let req = Request::builder()
        .uri(format!("/api/join/{share}"))
        .body(Body::empty())
        .unwrap();
    let resp = raw(&app, req).await;
    assert_rate_limited(&resp);
    assert_eq!(body_json(resp).await["error"]["code"], "rate_limited");
    // The guest-token route has its own bucket.
    app.guest(&share, "Still welcome").await;
});

both_dbs!(session_creation_is_rate_limited_per_ip, |app| async move {
    let org = app.org("Create Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Create").await;
    let app = app.with_limits(RateLimits {
        guest_tokens: generous(),
        share_lookups: generous(),
        session_creation: "2/min".parse().unwrap(),
        trust_proxy: false,
    });
    app.session(&therapist, "One").await;
    app.session(&therapist, "Two").await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/sessions")
        .header(header::AUTHORIZATION, format!("Bearer {}", therapist.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"session_name": "Three"}).to_string()))
        .unwrap();
    let resp = raw(&app, req).await;
    assert_rate_limited(&resp);
    assert_eq!(body_json(resp).await["error"]["code"], "rate_limited");
    assert_eq!(
        app.count("instant_sessions", "therapist_id = $1", &therapist.id)
            .await,
        2
    );
    // Listing is not creation: not limited.
    for _ in 0..5 {
        app.get("/api/sessions", Some(&therapist.token))
            .await
            .expect(200);
    }
});

both_dbs!(bodies_over_the_limit_are_413, |app| async move {
    let org = app.org("Big Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Big").await;
    let huge = format!(r#"{{"session_name":"{}"}}"#, "x".repeat(MAX_BODY_BYTES + 1));
    // Declared length over the limit.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/sessions")
        .header(header::AUTHORIZATION, format!("Bearer {}", therapist.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, huge.len())
        .body(Body::from(huge.clone()))
        .unwrap();
    let resp = app.send(req).await;
    resp.expect_err(413, "payload_too_large");
    // No declared length: refused while reading.
    let resp = app
        .post_raw("/api/join/whatever/guest", None, "application/json", &huge)
        .await;
    resp.expect_err(413, "payload_too_large");
    // Just under the limit is read (and refused for its content, not its size).
    let under = format!(
        r#"{{"session_name":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES - 100)
    );
    app.post_raw(
        "/api/sessions",
        Some(&therapist.token),
        "application/json",
        &under,
    )
    .await
    .expect_err(400, "invalid_session_name");
});

fn full_app(app: &TestApp, headers: HeaderPolicy) -> axum::Router {
    let static_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    theraroom::app::build_with(
        app.state(),
        static_dir,
        axum::Router::new(),
        &HttpOptions {
            limiters: RateLimiters::new(&common::test_limits()),
            headers,
        },
    )
}

async fn get_full(
    router: &axum::Router,
    path: &str,
    proto: Option<&str>,
) -> axum::http::Response<Body> {
    let mut req = Request::builder().uri(path);
    if let Some(proto) = proto {
        req = req.header("x-forwarded-proto", proto);
    }
    let req = from_peer(req.body(Body::empty()).unwrap(), "127.0.0.1:40001");
    router.clone().oneshot(req).await.unwrap()
}

fn cache_control(resp: &axum::http::Response<Body>) -> Option<&str> {
    resp.headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
}

fn hsts(resp: &axum::http::Response<Body>) -> Option<&str> {
    resp.headers()
        .get(header::STRICT_TRANSPORT_SECURITY)
        .and_then(|v| v.to_str().ok())
}

both_dbs!(
    api_responses_are_no_store_static_files_are_not,
    |app| async move {
        let org = app.org("Cache Clinic", true).await;
        let therapist = app.therapist(&org.id, "Dr Cache").await;
        let s = app.session(&therapist, "Private").await;
        let router = full_app(&app, HeaderPolicy::default());
        // Success with health data, auth errors, unknown routes, the doc.
        let mut req = Request::builder()
            .uri(format!("/api/sessions/{}", s["id"].as_str().unwrap()))
            .header(header::AUTHORIZATION, format!("Bearer {}", therapist.token))
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(common::TEST_PEER));
        let ok = router.clone().oneshot(req).await.unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(cache_control(&ok), Some("no-store"));
        for (path, status) in [
            ("/api/sessions", 401),
            ("/api/does/not/exist", 404),
            ("/api", 404),
            ("/api/openapi.json", 200),
        ] {
            let resp = get_full(&router, path, None).await;
            assert_eq!(resp.status().as_u16(), status, "{path}");
            assert_eq!(cache_control(&resp), Some("no-store"), "{path}");
        }
        // A JSON extractor error too.
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/sessions")
            .header(header::AUTHORIZATION, format!("Bearer {}", therapist.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{not json"))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(common::TEST_PEER));
        let bad = router.clone().oneshot(req).await.unwrap();
        assert_eq!(bad.status().as_u16(), 400);
        assert_eq!(cache_control(&bad), Some("no-store"));
        // Pages and static assets keep normal caching.
        for path in ["/", "/join/abc", "/js/join.js", "/healthz"] {
            let resp = get_full(&router, path, None).await;
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            assert_ne!(cache_control(&resp), Some("no-store"), "{path}");
        }
    }
);

both_dbs!(hsts_follows_the_settings, |app| async move {
    // Off by default, and X-Forwarded-Proto is not believed without --trust-proxy.
    let off = full_app(&app, HeaderPolicy::default());
    for proto in [None, Some("https")] {
        assert_eq!(
            hsts(&get_full(&off, "/api/openapi.json", proto).await),
            None
        );
        assert_eq!(hsts(&get_full(&off, "/", proto).await), None);
    }
    // --hsts: on every response, API and static.
    let on = full_app(
        &app,
        HeaderPolicy {
            hsts: true,
            trust_proxy: false,
        },
    );
    for path in ["/api/openapi.json", "/", "/js/join.js", "/api/nope"] {
        assert_eq!(
            hsts(&get_full(&on, path, None).await),
            Some(HSTS_VALUE),
            "{path}"
        );
    }
    // --trust-proxy: only when the proxy says the client used HTTPS.
    let proxied = full_app(
        &app,
        HeaderPolicy {
            hsts: false,
            trust_proxy: true,
        },
    );
    assert_eq!(
        hsts(&get_full(&proxied, "/", Some("https")).await),
        Some(HSTS_VALUE)
    );
    assert_eq!(hsts(&get_full(&proxied, "/", Some("http")).await), None);
    assert_eq!(hsts(&get_full(&proxied, "/", None).await), None);
});

/// Names that show nothing, or that hold bidi controls, in JSON escapes.
const BAD_NAMES: [&str; 6] = [
    "\u{200B}\u{200D}",
    "\u{3164}",
    "\u{2800}",
    "\u{0301}",
    "Dr \u{202E}kcid",
    "\u{2066}Ada\u{2069}",
];

both_dbs!(invisible_and_bidi_names_are_refused, |app| async move {
    let org = app.org("Name Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Name").await;
    let s = app.session(&therapist, "Names").await;
    let share = s["share_token"].as_str().unwrap().to_string();
    for name in BAD_NAMES {
        let resp = app
            .post(
                &format!("/api/join/{share}/guest"),
                None,
                Some(json!({ "name": name })),
            )
            .await;
        resp.expect_err(400, "invalid_name");
        let resp = app
            .post(
                "/api/sessions",
                Some(&therapist.token),
                Some(json!({ "session_name": name })),
            )
            .await;
        resp.expect_err(400, "invalid_session_name");
        let resp = app
            .post(
                "/api/communities",
                Some(&org.admin.token),
                Some(json!({ "name": name })),
            )
            .await;
        resp.expect_err(400, "invalid_community_name");
    }
    let invisible = app
        .post(
            &format!("/api/join/{share}/guest"),
            None,
            Some(json!({ "name": "\u{200B}" })),
        )
        .await;
    assert_eq!(invisible.message(), "name must contain a visible character");
    let bidi = app
        .post(
            &format!("/api/join/{share}/guest"),
            None,
            Some(json!({ "name": "a\u{202E}b" })),
        )
        .await;
    assert_eq!(
        bidi.message(),
        "name may not contain bidirectional control characters"
    );
    assert_eq!(
        app.count("guests", "session_id = $1", s["id"].as_str().unwrap())
            .await,
        0
    );
    // A visible name with a joiner inside is fine.
    let ok = app.guest(&share, "Ada \u{200D} L").await;
    assert!(ok["token"].is_string());
});

both_dbs!(openapi_documents_429_and_413, |app| async move {
    let doc = app.get("/api/openapi.json", None).await.expect(200).clone();
    let paths = doc["paths"].as_object().unwrap();
    let limited = [
        ("post", "/api/join/{share_token}/guest"),
        ("get", "/api/join/{share_token}"),
        ("post", "/api/sessions"),
        ("post", "/api/auth/login"),
    ];
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            let authenticated = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let is_limited = limited.contains(&(method.as_str(), path.as_str())) || authenticated;
            assert_eq!(
                responses.get("429").is_some(),
                is_limited,
                "429 on {method} {path}"
            );
            if is_limited {
                assert!(
                    responses["429"]["headers"].get("Retry-After").is_some(),
                    "{method} {path}"
                );
                assert!(responses["429"]["description"].as_str().unwrap().contains(
                    if path == "/api/auth/login" {
                        "too_many_attempts"
                    } else {
                        "rate_limited"
                    }
                ));
            }
            assert_eq!(
                responses.get("413").is_some(),
                op.get("requestBody").is_some(),
                "413 on {method} {path}"
            );
        }
    }
    assert!(paths["/api/sessions"]["post"]["responses"]
        .get("413")
        .is_some());
});
