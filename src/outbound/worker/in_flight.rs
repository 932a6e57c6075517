//! What the scheduler has in flight on this node, per app, and how much the next claim may take:
//! each app's places (its request slots, each with jobs waiting their turn) within the node's
//! ceiling, claimed for in batches rather than one job per finished request.

use crate::domain::app::FlowControl;
use crate::store::ClaimLimits;
use std::collections::HashMap;

/// Jobs of one app in flight on this node, per request slot of the app: one running its request
/// and the others ready to send the moment a slot frees. An app is claimed for again only once
/// half of its places are free (see [`InFlight::free`]), so that each claim takes many jobs at
/// once instead of one per finished request: on a fast target the claims, not the requests, are
/// what costs.
const JOBS_PER_SLOT: usize = 16;

/// An app with a rate limit holds no more jobs in flight than it may send requests in this many
/// seconds, so that a claimed job never waits for its turn anywhere near its lease.
const RATE_WINDOW_SECS: usize = 10;

/// Jobs in flight on this node, per app, and what each app allows.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    total: usize,
    per_app: HashMap<uuid::Uuid, usize>,
    flows: HashMap<uuid::Uuid, FlowControl>,
}

impl InFlight {
    /// The request slots of an app.
    pub(super) fn slots(flow: FlowControl) -> usize {
        usize::try_from(flow.concurrency.max(1)).unwrap_or(1)
    }

    /// Most jobs of an app in flight on this node.
    pub(super) fn cap(flow: FlowControl) -> usize {
        let cap = Self::slots(flow).saturating_mul(JOBS_PER_SLOT);
        match flow.requests_per_second {
            Some(rate) => {
                let rated = usize::try_from(rate)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(RATE_WINDOW_SECS);
                cap.min(rated.max(Self::slots(flow)))
            }
            None => cap,
        }
    }

    /// The free places of an app worth a claim: none until half of its places are free, so that
    /// claims come in batches, not one per finished job.
    pub(super) fn free(&self, app: &uuid::Uuid, flow: FlowControl) -> usize {
        let free = Self::cap(flow).saturating_sub(self.per_app.get(app).copied().unwrap_or(0));
        if free >= Self::cap(flow) / 2 { free } else { 0 }
    }

    /// What the next claim may take.
    pub(super) fn limits(&self, max_in_flight: usize) -> ClaimLimits {
        ClaimLimits {
            total: max_in_flight.saturating_sub(self.total),
            free: self
                .flows
                .iter()
                .map(|(app, flow)| (*app, self.free(app, *flow)))
                .collect(),
            default_free: Self::cap(FlowControl::default()),
        }
    }

    pub(super) fn start(&mut self, app: uuid::Uuid, flow: FlowControl) {
        self.total += 1;
        *self.per_app.entry(app).or_default() += 1;
        self.flows.insert(app, flow);
    }

    /// The job's requests are done: its app's slot is free (its end is still being stored).
    /// Returns whether this made a claim for the app worth its transaction: a batch's worth of
    /// its places is free.
    pub(super) fn end_requests(&mut self, app: uuid::Uuid) -> bool {
        if let Some(n) = self.per_app.get_mut(&app) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_app.remove(&app);
            }
        }
        self.flows.get(&app).is_none_or(|flow| self.free(&app, *flow) > 0)
    }

    /// Whether some app this node runs has a batch's worth of free places (see
    /// [`InFlight::free`]), or `refill`: the node came down from its ceiling (see [`InFlight::end`]).
    pub(super) fn worth_claiming(&self, max_in_flight: usize, refill: bool) -> bool {
        self.total < max_in_flight && (refill || self.flows.iter().any(|(app, flow)| self.free(app, *flow) > 0))
    }

    /// The job's end is stored. Returns whether this brought a node that was at its ceiling of
    /// jobs in flight down by an eighth of it (so a claim may take a batch again: one claim per
    /// ended job would cost a transaction per job).
    pub(super) fn end(&mut self, max_in_flight: usize) -> bool {
        let refill_at = max_in_flight.saturating_sub((max_in_flight / 8).max(1));
        let before = self.total;
        self.total = self.total.saturating_sub(1);
        before > refill_at && self.total <= refill_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(concurrency: u32, requests_per_second: Option<u32>) -> FlowControl {
        FlowControl {
            concurrency,
            requests_per_second,
        }
    }

    #[test]
    fn an_app_holds_its_slots_times_the_jobs_per_slot_unless_its_rate_allows_fewer() {
        assert_eq!(InFlight::cap(flow(8, None)), 8 * JOBS_PER_SLOT);
        // 2 requests per second: at most 10 seconds' worth of requests in flight.
        assert_eq!(InFlight::cap(flow(8, Some(2))), 2 * RATE_WINDOW_SECS);
        // Never fewer than the request slots.
        assert_eq!(InFlight::cap(flow(8, Some(0))), 8);
    }

    #[test]
    fn an_app_is_claimed_for_again_only_once_half_its_places_are_free() {
        let app = uuid::Uuid::now_v7();
        let limits = flow(2, None);
        let cap = InFlight::cap(limits);
        let mut in_flight = InFlight::default();
        for _ in 0..cap {
            in_flight.start(app, limits);
        }
        assert_eq!(in_flight.limits(512).free, vec![(app, 0)]);
        // Ending jobs one by one: no claim is worth it until half the places are free.
        for ended in 1..=cap {
            let worth = in_flight.end_requests(app);
            assert_eq!(worth, ended >= cap / 2, "after {ended} of {cap} ended");
            let free = in_flight.limits(512).free[0].1;
            assert_eq!(free, if ended >= cap / 2 { ended } else { 0 });
        }
        assert!(in_flight.worth_claiming(512, false));
    }

    #[test]
    fn a_node_at_its_ceiling_claims_again_when_a_job_ends() {
        let app = uuid::Uuid::now_v7();
        let limits = flow(4, None);
        let mut in_flight = InFlight::default();
        for _ in 0..16 {
            in_flight.start(app, limits);
        }
        assert_eq!(in_flight.limits(16).total, 0);
        // Not worth a claim until an eighth of the ceiling is free.
        in_flight.end_requests(app);
        assert!(!in_flight.end(16));
        in_flight.end_requests(app);
        let refill = in_flight.end(16);
        assert!(refill);
        assert_eq!(in_flight.limits(16).total, 2);
        assert!(in_flight.worth_claiming(16, refill));
    }
}
