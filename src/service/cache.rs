//! A small shared cache for what nearly every request re-reads (SCIM token look-ups, attribute
//! definitions and the user schema built from them). Entries live at most `ttl`; whoever changes
//! the cached data on this node clears the cache in the same call, so this node never serves a
//! stale entry after its own change. Other nodes see a change within `ttl` at the latest.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a cached SCIM token look-up, attribute definition list or schema is trusted: the
/// bound on how late another node's revocation or definition change is seen here.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Most entries kept; a full cache is emptied rather than grown (look-ups are cheap to redo).
const MAX_ENTRIES: usize = 1024;

/// A map whose entries expire after a fixed time; clones share the entries.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Arc<Mutex<Entries<K, V>>>,
}

#[derive(Debug)]
struct Entries<K, V> {
    map: HashMap<K, (Instant, V)>,
    /// Bumped by every `clear`: an answer read before a clear is not stored after it.
    generation: u64,
}

impl<K, V> Clone for TtlCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            ttl: self.ttl,
            entries: Arc::clone(&self.entries),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Arc::new(Mutex::new(Entries {
                map: HashMap::new(),
                generation: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // A panic while holding the lock leaves only a map behind: still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh value for `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        entries
            .map
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// The generation to pass to [`Self::insert`] for a value about to be read.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Stores `value`, unless the cache was cleared since `generation` was taken (the value may
    /// predate the change that cleared it).
    pub fn insert(&self, key: K, value: V, generation: u64) {
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
        }
        entries.map.insert(key, (Instant::now(), value));
    }

    /// Forgets every entry (after a change to what they hold).
    pub fn clear(&self) {
        let mut entries = self.lock();
        entries.map.clear();
        entries.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clearing_wins_over_a_late_insert() {
        let cache: TtlCache<&str, i32> = TtlCache::new(Duration::from_millis(50));
        let generation = cache.generation();
        cache.insert("a", 1, generation);
        assert_eq!(cache.clone().get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&"a"), None);
        let before_clear = cache.generation();
        cache.clear();
        cache.insert("a", 2, before_clear);
        assert_eq!(cache.get(&"a"), None, "a value read before the clear is not kept");
        cache.insert("a", 3, cache.generation());
        assert_eq!(cache.get(&"a"), Some(3));
    }
}
