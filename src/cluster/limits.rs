//! Rate-limit counters shared by the nodes: fixed windows counted in Redis, so that a
//! client spreading its attempts over the nodes meets one limit, not one per node.
//! Each node's own limiter still applies first; while Redis is out of reach only that
//! one does (the shared count fails open rather than refusing everyone).

use std::time::{SystemTime, UNIX_EPOCH};

use super::Cluster;

/// A shared count's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allowed,
    /// Over it until the window ends, this many seconds from now.
    Limited {
        /// Seconds until the window ends (at least 1).
        retry_after_secs: u64,
    },
}

/// The window `now_secs` falls in, and the seconds left in it.
fn window_of(now_secs: u64, window_secs: u64) -> (u64, u64) {
    let window_secs = window_secs.max(1);
    let index = now_secs / window_secs;
    let left = window_secs - now_secs % window_secs;
    (index, left.max(1))
}

impl Cluster {
    /// Counts one event of `name` for `key` and answers whether the cluster-wide count
    /// in the current window of `window_secs` is at most `limit`.
    pub async fn count_shared(
        &self,
        name: &str,
        key: &str,
        limit: u32,
        window_secs: u64,
    ) -> Verdict {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (window, left) = window_of(now, window_secs);
        let counter = self.keys().limit(name, key, window);
        let mut redis = self.redis();
        let counted: Result<(i64,), _> = redis::pipe()
            .cmd("SET")
            .arg(&counter)
            .arg(0)
            .arg("EX")
            .arg(window_secs.max(1) + 1)
            .arg("NX")
            .ignore()
            .cmd("INCR")
            .arg(&counter)
            .query_async(&mut redis)
            .await;
        match counted {
            Ok((count,)) if count > i64::from(limit) => Verdict::Limited {
                retry_after_secs: left,
            },
            Ok(_) => Verdict::Allowed,
            Err(e) => {
                self.redis_failed("shared rate limit", &e);
                Verdict::Allowed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_say_how_long_is_left() {
        assert_eq!(window_of(120, 60), (2, 60));
        assert_eq!(window_of(179, 60), (2, 1));
        assert_eq!(window_of(5, 0), (5, 1));
    }
}
