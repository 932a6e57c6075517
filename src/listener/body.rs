//! Request bodies that must keep arriving: a pause longer than the header timeout between two
//! parts ends the request, and so does a body that, taken as a whole, arrives slower than
//! [`MIN_BODY_RATE`] once the header timeout's grace is spent. Without the second rule a client
//! sending a byte now and then would hold its connection (and its place under the connection cap)
//! for as long as it liked.

use hyper::body::{Body, Buf, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Slowest average pace a request body may arrive at, in bytes per second, beyond the grace of
/// the header timeout: a body of 1 MB may take about 17 minutes at this pace, a trickle of a
/// byte now and then is cut off.
pub const MIN_BODY_RATE: u64 = 1024;

/// Why a request body was cut off; its words reach the client in the error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyTimeout {
    /// Nothing arrived for longer than the header timeout.
    #[error("the request body was not received within {0} s: nothing arrived meanwhile")]
    Stalled(u64),
    /// The body as a whole came too slowly.
    #[error(
        "the request body was not received within {seconds} s: it must arrive at {MIN_BODY_RATE} bytes per second or faster (after the first {grace} s)"
    )]
    TooSlow {
        /// Seconds it had when it was cut off.
        seconds: u64,
        /// The header timeout's grace, in seconds.
        grace: u64,
    },
}

/// The time a body that has delivered `received` bytes may have taken since its first poll.
pub fn allowed_time(grace: Duration, received: u64) -> Duration {
    grace.saturating_add(Duration::from_millis(received.saturating_mul(1000) / MIN_BODY_RATE))
}

/// A request body held to the pause and pace rules (see the module's description).
pub struct PacedBody<B> {
    inner: B,
    /// The header timeout: the longest pause, and the grace before the pace counts.
    grace: Duration,
    /// When the body was first read.
    started: Option<Instant>,
    received: u64,
    /// Fires at the earlier of the pause limit and the pace limit.
    timer: Pin<Box<Sleep>>,
    /// Set when the timer was last armed: the pause limit counts from there.
    last_part: Instant,
}

impl<B> PacedBody<B> {
    /// Wraps `inner`; `grace` is the header timeout.
    pub fn new(inner: B, grace: Duration) -> Self {
        let now = Instant::now();
        PacedBody {
            inner,
            grace,
            started: None,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(now + grace)),
            last_part: now,
        }
    }

    /// Arms the timer for the next part: the pause limit or the pace limit, whichever is sooner.
    fn arm(&mut self, now: Instant, started: Instant) {
        self.last_part = now;
        let paced = started + allowed_time(self.grace, self.received);
        self.timer.as_mut().reset((now + self.grace).min(paced));
    }

    /// Why the body is cut off now that its timer fired.
    fn timed_out(&self, now: Instant, started: Instant) -> BodyTimeout {
        if now.saturating_duration_since(self.last_part) >= self.grace {
            BodyTimeout::Stalled(self.grace.as_secs())
        } else {
            BodyTimeout::TooSlow {
                seconds: now.saturating_duration_since(started).as_secs(),
                grace: self.grace.as_secs(),
            }
        }
    }
}

impl<B> Body for PacedBody<B>
where
    B: Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        let this = &mut *self;
        let started = match this.started {
            Some(started) => started,
            None => {
                let now = Instant::now();
                this.started = Some(now);
                this.arm(now, now);
                now
            }
        };
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.remaining() as u64);
                }
                this.arm(Instant::now(), started);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Box::new(this.timed_out(Instant::now(), started)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The first [`BodyTimeout`] in an error's chain of sources: a request body that was cut off.
pub fn body_timeout<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e BodyTimeout> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(timeout) = err.downcast_ref::<BodyTimeout>() {
            return Some(timeout);
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Bytes;
    use std::collections::VecDeque;

    /// A body whose parts come one after another, each after its pause.
    struct Trickle {
        parts: VecDeque<(Duration, &'static [u8])>,
        pause: Option<Pin<Box<Sleep>>>,
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            let this = &mut *self;
            let Some((pause, part)) = this.parts.front().copied() else {
                return Poll::Ready(None);
            };
            let sleep = this.pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
            ready!(sleep.as_mut().poll(cx));
            this.pause = None;
            this.parts.pop_front();
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(part)))))
        }
    }

    #[test]
    fn a_body_may_take_the_grace_plus_a_second_per_kilobyte() {
        let grace = Duration::from_secs(10);
        assert_eq!(allowed_time(grace, 0), grace);
        assert_eq!(allowed_time(grace, 1024), Duration::from_secs(11));
        assert_eq!(allowed_time(grace, 1024 * 1024), Duration::from_secs(10 + 1024));
        assert!(
            allowed_time(grace, u64::MAX) > Duration::from_secs(1 << 40),
            "no overflow"
        );
    }

    fn trickled(parts: Vec<(Duration, &'static [u8])>) -> PacedBody<Trickle> {
        let body = Trickle {
            parts: parts.into(),
            pause: None,
        };
        PacedBody::new(body, Duration::from_secs(10))
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_arrives_whole() {
        let parts = (0..30).map(|_| (Duration::from_secs(1), &[b'x'; 2048][..])).collect();
        let body = trickled(parts).collect().await.expect("a body at 2 KB/s is read");
        assert_eq!(body.to_bytes().len(), 30 * 2048);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_grace_ends_the_body() {
        let parts = vec![(Duration::ZERO, &b"{"[..]), (Duration::from_secs(11), &b"}"[..])];
        let err = trickled(parts).collect().await.expect_err("cut off");
        assert_eq!(body_timeout(err.as_ref()), Some(&BodyTimeout::Stalled(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_off_once_the_grace_is_spent() {
        let started = Instant::now();
        // A byte every 9 s never pauses too long, and would never end without the pace rule.
        let parts = (0..1000).map(|_| (Duration::from_secs(9), &b"x"[..])).collect();
        let err = trickled(parts).collect().await.expect_err("cut off");
        let timeout = body_timeout(err.as_ref()).cloned().expect("a body timeout");
        assert!(matches!(timeout, BodyTimeout::TooSlow { grace: 10, .. }), "{timeout:?}");
        assert!(
            started.elapsed() < Duration::from_secs(11),
            "cut off at the grace plus a second per kilobyte: {:?}",
            started.elapsed()
        );
        assert!(timeout.to_string().contains("not received within"));
    }
}
