//! The accounts a target already holds, read once per app when many users are about to be
//! created there (a new policy, a sync): page through its `/Users` and keep them by `userName`,
//! so each create needs no look-up of its own. A create of a user the inventory does not list
//! still meets the target's 409 for a duplicate and then adopts, so a stale inventory never
//! duplicates an account.

use crate::outbound::flow::AppFlow;
use crate::outbound::scim::ScimClient;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Queued user jobs of an app from which an inventory pays: below this, look-ups are cheaper.
pub(super) const MIN_QUEUED_FOR_INVENTORY: u64 = 50;
/// How long an inventory is used.
const INVENTORY_TTL: Duration = Duration::from_secs(120);
/// The target must hold at most this many accounts per queued job for the read to pay.
const MAX_ACCOUNTS_PER_QUEUED_JOB: u64 = 4;
/// Users asked for per page.
const PAGE: u64 = 500;
/// Most pages read (a guard against a target whose paging never ends).
const MAX_PAGES: u64 = 2_000;

/// Queued user jobs per app, counted at most once a second and by one job at a time: the others
/// wait for that count (a hundred jobs of one claim must not all ask the store at once). A failed
/// count is remembered for the second too, as no count.
#[derive(Debug, Default)]
pub(super) struct QueueDepths {
    apps: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<LastCount>>>>,
}

/// When an app's queue was last counted, and what the count was (`None`: it failed).
type LastCount = Option<(Instant, Option<u64>)>;

impl QueueDepths {
    /// The count of `app`: the one less than a second old, or a new one from `count`.
    pub(super) async fn get<F, Fut>(&self, app: Uuid, count: F) -> Option<u64>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<u64>>,
    {
        let slot = self.apps.lock().ok()?.entry(app).or_default().clone();
        let mut last = slot.lock().await;
        if let Some((at, queued)) = *last
            && at.elapsed() < Duration::from_secs(1)
        {
            return queued;
        }
        let queued = count().await;
        *last = Some((Instant::now(), queued));
        queued
    }
}

/// The users a target held when it was read, by lower-cased `userName`.
#[derive(Debug, Default)]
pub(super) struct Inventory {
    users: HashMap<String, Value>,
}

impl Inventory {
    /// The user named `username` (regardless of case), as the target listed it.
    pub(super) fn find(&self, username: &str) -> Option<&Value> {
        self.users.get(&username.to_lowercase())
    }

    /// How many users it holds.
    pub(super) fn len(&self) -> usize {
        self.users.len()
    }
}

/// One app's inventory: being read, read (or found not worth reading) at a time.
#[derive(Debug, Default)]
struct Slot {
    cell: tokio::sync::OnceCell<Option<Arc<Inventory>>>,
    at: Mutex<Option<Instant>>,
}

/// The inventories of every app on this node.
#[derive(Debug, Default)]
pub(super) struct Inventories {
    apps: Mutex<HashMap<Uuid, Arc<Slot>>>,
}

impl Inventories {
    /// The slot of `app`, renewed once its inventory is older than its time to live.
    fn slot(&self, app: Uuid) -> Option<Arc<Slot>> {
        let mut apps = self.apps.lock().ok()?;
        let fresh = apps.get(&app).is_some_and(|slot| {
            slot.at
                .lock()
                .ok()
                .and_then(|at| *at)
                .is_none_or(|at| at.elapsed() < INVENTORY_TTL)
        });
        if !fresh {
            apps.insert(app, Arc::new(Slot::default()));
        }
        apps.get(&app).cloned()
    }

    /// The inventory of `app` when it has been read (or found not worth reading) and is fresh.
    pub(super) fn ready(&self, app: Uuid) -> Option<Option<Arc<Inventory>>> {
        let apps = self.apps.lock().ok()?;
        let slot = apps.get(&app)?;
        let fresh = slot
            .at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < INVENTORY_TTL);
        if fresh { slot.cell.get().cloned() } else { None }
    }

    /// The inventory of `app`, read once by the first job that asks while `queued` user jobs
    /// wait; `None` when reading it does not pay (few jobs, a large target) or failed: then each
    /// create looks its user up. Also the `Retry-After` of a 429 the read met (this node's
    /// requests to the app are paused already; the caller tells the other nodes).
    pub(super) async fn get(
        &self,
        app: Uuid,
        queued: u64,
        client: &ScimClient,
        flow: &AppFlow,
    ) -> (Option<Arc<Inventory>>, Option<Duration>) {
        if queued < MIN_QUEUED_FOR_INVENTORY {
            return (None, None);
        }
        let Some(slot) = self.slot(app) else {
            return (None, None);
        };
        let mut throttled = None;
        let inventory = slot
            .cell
            .get_or_init(|| async {
                let read = read(client, flow, queued).await;
                if let Ok(mut at) = slot.at.lock() {
                    *at = Some(Instant::now());
                }
                match read {
                    Ok(inventory) => inventory.map(Arc::new),
                    Err(delay) => {
                        throttled = Some(delay);
                        None
                    }
                }
            })
            .await;
        (inventory.clone(), throttled)
    }
}

/// The number in a list answer's `totalResults`.
fn total_results(body: &Value) -> Option<u64> {
    body.get("totalResults").and_then(Value::as_u64)
}

/// Pages through the target's users. The first page also tells the total: when the target holds
/// too many for the read to pay, that page is all that is read (one request, as a count alone
/// would cost). Stops at an empty page, when `totalResults` is reached, or at the page guard;
/// `None` when the target is too large for the read to pay or a page failed; `Err` with its
/// `Retry-After` when the target answered 429.
async fn read(client: &ScimClient, flow: &AppFlow, queued: u64) -> Result<Option<Inventory>, Duration> {
    let mut inventory = Inventory::default();
    let mut start = 1u64;
    let mut first_total = None;
    for _ in 0..MAX_PAGES {
        let page = match get(client, flow, &format!("/Users?startIndex={start}&count={PAGE}")).await {
            Ok(page) => page,
            Err(throttled) => return throttled.map_or(Ok(None), Err),
        };
        let total = match first_total {
            Some(total) => total,
            None => {
                let Some(total) = total_results(&page) else {
                    return Ok(None);
                };
                if total > queued.saturating_mul(MAX_ACCOUNTS_PER_QUEUED_JOB) {
                    return Ok(None);
                }
                first_total = Some(total);
                total
            }
        };
        let resources = page
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if resources.is_empty() {
            break;
        }
        start += resources.len() as u64;
        for resource in resources {
            if let Some(name) = resource.get("userName").and_then(Value::as_str) {
                inventory.users.insert(name.to_lowercase(), resource);
            }
        }
        if start > total_results(&page).unwrap_or(total) {
            break;
        }
    }
    tracing::debug!(
        users = inventory.len(),
        "read the target's users once for the creates queued"
    );
    Ok(Some(inventory))
}

/// One page; `Err` when it failed, with the `Retry-After` of a 429, which pauses the app's
/// requests on this node before its slot is freed (as every request's 429 does).
async fn get(client: &ScimClient, flow: &AppFlow, path: &str) -> Result<Value, Option<Duration>> {
    let permit = flow.admit().await;
    let answer = client.send(Method::GET, path, None).await;
    let throttled = match &answer {
        Err(e) if e.status() == Some(429) => {
            let delay = e.retry_after().unwrap_or(Duration::from_secs(1));
            flow.pause(delay);
            Some(delay)
        }
        _ => None,
    };
    drop(permit);
    match answer {
        Ok(response) => Ok(response.body),
        Err(e) => {
            tracing::debug!(error = %e, "reading the target's users failed; each create looks its user up");
            Err(throttled)
        }
    }
}
