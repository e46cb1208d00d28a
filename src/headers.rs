//! Response headers that depend on the request: `Cache-Control: no-store` on every
//! REST response (they carry health data; browsers and proxies must not keep them)
//! and HSTS when the server is reached over HTTPS.
//!
//! TLS is terminated in front of TheraRoom (a proxy or load balancer), so the
//! server learns that a request came over HTTPS either from `--hsts` (every client
//! connects over HTTPS) or, with `--trust-proxy`, from `X-Forwarded-Proto: https`.
//! Without `--trust-proxy` that header is ignored: any client could send it.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The HSTS value: one year, subdomains included.
pub const HSTS_VALUE: &str = "max-age=31536000; includeSubDomains";

/// Which request-dependent headers to send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderPolicy {
    /// Send HSTS on every response (the server is only reachable over HTTPS).
    pub hsts: bool,
    /// Believe `X-Forwarded-Proto` (a proxy in front overwrites it).
    pub trust_proxy: bool,
}

impl HeaderPolicy {
    /// Whether `req` reached us over HTTPS as far as this policy can tell.
    fn over_https(&self, req: &Request) -> bool {
        if self.hsts {
            return true;
        }
        self.trust_proxy
            && req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }
}

/// True for paths of the REST API (`/api` and below).
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Middleware applying [`HeaderPolicy`]; static files keep their normal caching.
pub async fn apply(State(policy): State<HeaderPolicy>, req: Request, next: Next) -> Response {
    let api = is_api(req.uri().path());
    let https = policy.over_https(&req);
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS_VALUE),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(proto: Option<&str>) -> Request {
        let mut b = Request::builder().uri("/api/x");
        if let Some(p) = proto {
            b = b.header("x-forwarded-proto", p);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn https_is_known_from_the_setting_or_a_trusted_proxy() {
        let off = HeaderPolicy::default();
        let on = HeaderPolicy {
            hsts: true,
            trust_proxy: false,
        };
        let proxied = HeaderPolicy {
            hsts: false,
            trust_proxy: true,
        };
        assert!(!off.over_https(&req(Some("https"))));
        assert!(on.over_https(&req(None)));
        assert!(proxied.over_https(&req(Some("HTTPS"))));
        assert!(proxied.over_https(&req(Some("https, http"))));
        assert!(!proxied.over_https(&req(Some("http"))));
        assert!(!proxied.over_https(&req(None)));
    }

    #[test]
    fn api_paths() {
        assert!(is_api("/api"));
        assert!(is_api("/api/sessions"));
        assert!(!is_api("/apix"));
        assert!(!is_api("/js/join.js"));
        assert!(!is_api("/"));
    }
}
