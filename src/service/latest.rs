//! Changes applied to the latest state. A change to a user or group is computed from the state
//! the service read, and the store writes it only if that state's version is still the stored one
//! (its optimistic check answers [`Error::PreconditionFailed`] otherwise). A change sent with a
//! precondition (`If-Match`) then fails (412): the client asked for exactly that version. A change
//! sent without one is read, computed and written again, so concurrent writers never refuse each
//! other and none of their changes is lost.
//!
//! Writers of the same resource in this process first queue on a lock of that resource, held
//! from the read to the commit, so on one node they do not collide at all; the retries cover
//! writers on other nodes (several hubs on one PostgreSQL database) and writes that change the
//! version without the lock (memberships changed through the admin API).

use crate::domain::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use uuid::Uuid;

/// How often a change without a precondition is tried before it is refused as a conflict (409).
pub const MAX_ATTEMPTS: u32 = 20;

/// The longest pause between two attempts, in microseconds.
const MAX_PAUSE_MICROS: u64 = 50_000;

/// One lock per resource being written in this process (entries die with their last holder).
#[derive(Default)]
struct ResourceLocks {
    locks: Mutex<HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>>,
}

impl ResourceLocks {
    /// Waits for the turn of `id` (first come, first served).
    async fn lock(&self, id: Uuid) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            match locks.get(&id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    if locks.len() >= 64 {
                        locks.retain(|_, held| held.strong_count() > 0);
                    }
                    locks.insert(id, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// The turns of writers to users and groups: one lock per resource being written, shared by the
/// services of one hub (the admin API's and the SCIM server's `DirectoryService`), so that a
/// resource is the same row whichever of them writes it. Cloning shares the locks.
#[derive(Clone, Default)]
pub struct Turns {
    locks: Arc<ResourceLocks>,
}

impl std::fmt::Debug for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Turns")
    }
}

/// A random pause before attempt `attempt + 1`: up to 2, 4, 8, ... milliseconds, at most 50.
fn pause(attempt: u32) -> Duration {
    let ceiling = (1_000u64 << attempt.min(6)).min(MAX_PAUSE_MICROS);
    Duration::from_micros(rand::random_range(ceiling / 4..=ceiling))
}

impl Turns {
    /// Runs `attempt`, a read-compute-write of the resource `id`, in this hub's turn for `id`.
    /// With `conditional` (the request carried `If-Match`) it runs once and a stale version stays
    /// [`Error::PreconditionFailed`]. Without, a stale version makes it run again on the new
    /// state, after a short random pause, up to [`MAX_ATTEMPTS`] times; beyond that the change is
    /// refused as a conflict. Every other outcome is returned as it is.
    pub async fn on_latest<T, F, Fut>(&self, id: Uuid, conditional: bool, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let _turn = self.locks.lock(id).await;
        retry_stale(conditional, attempt).await
    }
}

/// The retry loop of [`Turns::on_latest`].
async fn retry_stale<T, F, Fut>(conditional: bool, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        match attempt().await {
            Err(Error::PreconditionFailed(detail)) if !conditional => {
                if tried >= MAX_ATTEMPTS {
                    return Err(Error::Conflict {
                        field: None,
                        message: format!(
                            "the resource kept changing while this change was applied ({tried} attempts; last: {detail}); send it again"
                        ),
                    });
                }
                tokio::time::sleep(pause(tried)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn stale() -> Error {
        Error::PreconditionFailed("stale".into())
    }

    #[tokio::test]
    async fn unconditional_changes_are_tried_again_until_they_apply() {
        let calls = AtomicU32::new(0);
        let result = Turns::default()
            .on_latest(Uuid::now_v7(), false, || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(stale())
                } else {
                    Ok("written")
                }
            })
            .await;
        assert_eq!(result.ok(), Some("written"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn conditional_changes_fail_on_the_first_stale_version() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = Turns::default()
            .on_latest(Uuid::now_v7(), true, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(stale())
            })
            .await;
        assert!(matches!(result, Err(Error::PreconditionFailed(_))), "{result:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_end_in_a_conflict() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = Turns::default()
            .on_latest(Uuid::now_v7(), false, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(stale())
            })
            .await;
        assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
        assert_eq!(calls.load(Ordering::SeqCst), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = Turns::default()
            .on_latest(Uuid::now_v7(), false, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::conflict("username", "taken"))
            })
            .await;
        assert!(
            matches!(result, Err(Error::Conflict { field: Some(_), .. })),
            "{result:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn writers_of_one_resource_take_turns() {
        let id = Uuid::now_v7();
        let inside = Arc::new(AtomicU32::new(0));
        let turns = Turns::default();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let inside = Arc::clone(&inside);
            let turns = turns.clone();
            tasks.push(tokio::spawn(async move {
                turns
                    .on_latest(id, false, || async {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two writers at once");
                        tokio::task::yield_now().await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }));
        }
        for task in tasks {
            assert!(matches!(task.await, Ok(Ok(()))));
        }
    }
}
