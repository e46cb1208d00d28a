//! The REST rate limits counted across nodes (several nodes on Redis): each node's own
//! limiter ([`super::rate_limit`]) answers first; a request it lets through is also
//! counted in Redis, per client address and period, and refused with the same 429 when
//! the cluster-wide count is over the limit. One node alone skips this.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::rate_limit::{ClientIp, Rate, RateLimiters, LIMITED_ROUTES};
use crate::cluster::limits::Verdict;
use crate::error::ApiError;

/// Middleware of every REST route: counts the limited ones across the nodes.
pub(super) async fn count(
    State(limiters): State<RateLimiters>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = limiters.shared.get() else {
        return next.run(request).await;
    };
    let method = request.method().as_str().to_ascii_lowercase();
    let path = matched
        .as_ref()
        .map(MatchedPath::as_str)
        .unwrap_or_default();
    let Some((_, _, name)) = LIMITED_ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
    else {
        return next.run(request).await;
    };
    let rate = rate_of(&limiters, name);
    let key = ClientIp {
        trust_proxy: limiters.limits.trust_proxy,
    }
    .of(&request)
    .to_string();
    match cluster
        .count_shared(name, &key, rate.count, rate.per.as_secs().max(1))
        .await
    {
        Verdict::Allowed => next.run(request).await,
        Verdict::Limited { retry_after_secs } => {
            metrics::counter!("theraroom_rate_limited_total", "limit" => *name).increment(1);
            ApiError::rate_limited(
                retry_after_secs,
                format!("too many requests; retry in {retry_after_secs} s"),
            )
            .into_response()
        }
    }
}

fn rate_of(limiters: &RateLimiters, name: &str) -> Rate {
    let limits = &limiters.limits;
    match name {
        "guest_tokens" => limits.guest_tokens,
        "share_lookups" => limits.share_lookups,
        _ => limits.session_creation,
    }
}
