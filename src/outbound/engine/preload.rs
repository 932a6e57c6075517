//! What claimed jobs read before they run, read for a whole claim at once: each app once, and the
//! users of its user jobs with a few statements for all of them, instead of about five statements
//! per job. A job that finds nothing read ahead for it reads its own, so a failed read ahead costs
//! only speed; but when the store refused the read ahead (down, full), the claim's jobs do not run
//! at all: they go back to the queue without spending an attempt, instead of each asking the
//! store again at once (a claim may hold a hundred jobs, and a database that is coming back
//! should not meet them all together).
//!
//! Reading at claim time is as good as reading at the start of the run: a job's subject runs no
//! other job meanwhile, and a change made after the read is a new change-log event, which queues
//! a new job for the subject that runs after this one.

use super::{Engine, EngineStore};
use crate::domain::job::{Job, SubjectKind};
use crate::outbound::state::UserState;
use crate::store::StoredApp;
use std::collections::HashMap;
use uuid::Uuid;

/// What a claim's jobs read ahead, by app and by user.
#[derive(Debug, Default)]
pub struct Preloaded {
    apps: HashMap<Uuid, StoredApp>,
    users: HashMap<(Uuid, Uuid), UserState>,
    refused: Option<String>,
}

/// What one job read ahead: its app and, for a user job, the user's state in it.
#[derive(Debug, Default)]
pub struct JobState {
    pub(super) app: Option<StoredApp>,
    pub(super) user: Option<UserState>,
    /// Why the store refused the read ahead: the job waits for it instead of running.
    pub(super) refused: Option<String>,
}

impl Preloaded {
    /// What `job` read ahead, taken out of the claim's (the app is shared, the user is not).
    pub fn take(&mut self, job: &Job) -> JobState {
        let user = match job.subject_kind {
            SubjectKind::User => Uuid::parse_str(&job.subject_id)
                .ok()
                .and_then(|user| self.users.remove(&(job.app_id, user))),
            _ => None,
        };
        JobState {
            app: self.apps.get(&job.app_id).cloned(),
            user,
            refused: self.refused.clone(),
        }
    }
}

impl<S> Engine<S>
where
    S: EngineStore,
{
    /// Reads ahead what `jobs` need. What cannot be read is left out, for each job to read (and
    /// meet the error) itself.
    pub async fn preload<'j>(&self, jobs: impl IntoIterator<Item = &'j Job>) -> Preloaded {
        let mut preloaded = Preloaded::default();
        let mut users_by_app: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for job in jobs {
            if job.subject_kind == SubjectKind::User
                && let Ok(user) = Uuid::parse_str(&job.subject_id)
            {
                users_by_app.entry(job.app_id).or_default().push(user);
            }
            if preloaded.refused.is_none() && !preloaded.apps.contains_key(&job.app_id) {
                match self.store.get_app(job.app_id).await {
                    Ok(Some(app)) => {
                        preloaded.apps.insert(job.app_id, app);
                    }
                    Ok(None) => {}
                    Err(e) => preloaded.refuse(&e),
                }
            }
        }
        if preloaded.refused.is_some() {
            return preloaded;
        }
        for (app_id, users) in users_by_app {
            // One job alone reads as fast by itself; and while the store is out, the jobs ask it
            // one by one (each meeting the outage) rather than this claim waiting on it.
            if users.len() < 2 || self.health.outage().is_some() {
                continue;
            }
            let Some(app) = preloaded.apps.get(&app_id) else {
                continue;
            };
            match UserState::load_many(&self.store, &app.app, &users).await {
                Ok(states) => preloaded
                    .users
                    .extend(states.into_iter().map(|(user, state)| ((app_id, user), state))),
                Err(e) => {
                    preloaded.refuse(&e);
                    if preloaded.refused.is_some() {
                        return preloaded;
                    }
                }
            }
        }
        preloaded
    }
}

impl Preloaded {
    /// Notes a failed read: a store fault holds the claim's jobs; any other error is left for
    /// each job to meet by itself.
    fn refuse(&mut self, error: &crate::domain::Error) {
        if error.store_fault().is_some() {
            self.refused = Some(error.to_string());
        }
    }
}
