//! Per-app flow control on this node: at most `concurrency` requests in flight, at most
//! `requests_per_second`, and a pause that a 429 with `Retry-After` imposes on every worker.

use crate::domain::app::FlowControl;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

#[derive(Debug)]
struct Gate {
    next_slot: Instant,
    paused_until: Instant,
}

/// The limits of one app.
#[derive(Debug)]
pub struct AppFlow {
    limits: FlowControl,
    permits: Arc<Semaphore>,
    gate: Mutex<Gate>,
}

impl AppFlow {
    fn new(limits: FlowControl) -> Self {
        let now = Instant::now();
        Self {
            limits,
            permits: Arc::new(Semaphore::new(usize::try_from(limits.concurrency.max(1)).unwrap_or(1))),
            gate: Mutex::new(Gate {
                next_slot: now,
                paused_until: now,
            }),
        }
    }

    /// Waits until a request may be sent: a free slot, no pause in force, and the rate respected.
    /// Hold the permit until the answer has arrived.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.permits.clone().acquire_owned().await.ok();
        loop {
            let (wait, reserved) = {
                let Ok(mut gate) = self.gate.lock() else { return permit };
                let now = Instant::now();
                if gate.paused_until > now {
                    (gate.paused_until - now, false)
                } else if let Some(rate) = self.limits.requests_per_second {
                    let slot = gate.next_slot.max(now);
                    gate.next_slot = slot + Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                    (slot - now, true)
                } else {
                    return permit;
                }
            };
            tokio::time::sleep(wait).await;
            if reserved {
                // A pause may have begun while waiting for the slot: check again.
                let paused = self
                    .gate
                    .lock()
                    .map(|g| g.paused_until > Instant::now())
                    .unwrap_or(false);
                if !paused {
                    return permit;
                }
            }
        }
    }

    /// Holds every request to the app for `delay` (the target's `Retry-After`).
    pub fn pause(&self, delay: Duration) {
        if let Ok(mut gate) = self.gate.lock() {
            let until = Instant::now() + delay;
            if until > gate.paused_until {
                gate.paused_until = until;
            }
        }
    }
}

/// The flow limits of every app on this node.
#[derive(Debug, Default)]
pub struct FlowRegistry {
    apps: Mutex<HashMap<Uuid, Arc<AppFlow>>>,
}

impl FlowRegistry {
    /// The flow of `app`, created (or recreated when its limits changed) on demand.
    pub fn get(&self, app: Uuid, limits: FlowControl) -> Arc<AppFlow> {
        let Ok(mut apps) = self.apps.lock() else {
            return Arc::new(AppFlow::new(limits));
        };
        match apps.get(&app) {
            Some(flow) if flow.limits == limits => flow.clone(),
            _ => {
                let flow = Arc::new(AppFlow::new(limits));
                apps.insert(app, flow.clone());
                flow
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_and_pause_space_requests() {
        let flow = AppFlow::new(FlowControl {
            concurrency: 2,
            requests_per_second: Some(10),
        });
        let start = Instant::now();
        for _ in 0..5 {
            drop(flow.admit().await);
        }
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "five requests at 10/s take 0.4 s"
        );
        flow.pause(Duration::from_secs(1));
        let before = Instant::now();
        drop(flow.admit().await);
        assert!(
            before.elapsed() >= Duration::from_secs(1),
            "a pause holds the next request"
        );
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let flow = AppFlow::new(FlowControl {
            concurrency: 2,
            requests_per_second: None,
        });
        let a = flow.admit().await;
        let b = flow.admit().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), flow.admit())
                .await
                .is_err()
        );
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), flow.admit())
                .await
                .is_ok()
        );
        drop(b);
    }
}
