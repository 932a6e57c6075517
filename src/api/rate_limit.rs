//! The request rate limit per bearer token, on `/scim/v2` and the admin API: a token bucket per
//! token (kept by the token's SHA-256, never the token itself) that fills at `per_second` up to
//! `burst`. A request finding it empty is answered 429 with `Retry-After` (on `/scim/v2` as an
//! RFC 7644 error body) before any work is done. Requests without a bearer token (the console,
//! health checks) are not counted here.

use super::HubState;
pub use crate::config::RateLimit;
use crate::domain::Error;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets kept before full ones (tokens idle long enough to have refilled) are forgotten.
const FORGET_FULL_AFTER: usize = 10_000;

/// The buckets of every token seen.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
    /// When full buckets were last forgotten: at most once a second, so that a map kept full by
    /// many tokens is not scanned on every request.
    last_sweep: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A limiter with `limit`.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::default(),
            last_sweep: Mutex::default(),
        }
    }

    /// Whether the last sweep was over a second before `now` (and, if so, notes this one).
    fn swept_before(&self, now: Instant) -> bool {
        let mut last = self.last_sweep.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Takes one request of `token` at `now`; the error is how long until one is taken again.
    fn take(&self, token: &str, now: Instant) -> Result<(), Duration> {
        if self.limit.per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.limit.per_second);
        let burst = f64::from(self.limit.burst.max(1));
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= FORGET_FULL_AFTER && self.swept_before(now) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// The middleware: counts each request with a bearer token against that token's bucket.
pub async fn limit_per_token(State(state): State<HubState>, request: Request, next: Next) -> Response {
    if let Some(token) = super::extract::bearer_token(request.headers())
        && let Err(wait) = state.rate_limiter.take(token, Instant::now())
    {
        let error = Error::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        };
        return if request.uri().path().starts_with("/scim/") {
            super::scim::ScimError(error).into_response()
        } else {
            super::error::ApiError(error).into_response()
        };
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("a", start).is_ok());
        }
        let wait = limiter.take("a", start).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another token has its own bucket.
        assert!(limiter.take("b", start).is_ok());
        // A tenth of a second later, one more request is taken, and only one.
        let later = start + Duration::from_millis(100);
        assert!(limiter.take("a", later).is_ok());
        assert!(limiter.take("a", later).is_err());
        // After a quiet spell the bucket is full again, never more.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take("a", much_later).is_ok());
        }
        assert!(limiter.take("a", much_later).is_err());
    }

    #[test]
    fn spaces_around_a_token_do_not_make_it_another() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer   tok  ".parse().unwrap());
        assert_eq!(super::super::extract::bearer_token(&headers), Some("tok"));
        let limiter = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 1,
        });
        let now = Instant::now();
        assert!(limiter.take("tok", now).is_ok());
        assert!(
            limiter
                .take(super::super::extract::bearer_token(&headers).unwrap(), now)
                .is_err()
        );
    }

    #[test]
    fn off_takes_everything() {
        let limiter = RateLimiter::new(RateLimit::OFF);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.take("a", now).is_ok());
        }
    }
}
