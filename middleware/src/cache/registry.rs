//! The per-key registry: one cache per cache key, shared by every handle that asks for the
//! key, and forgotten when the last handle is dropped.
//!
//! The registry is consulted when a source is derived (under a lock), never per request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use super::{TokenCache, WeakTokenCache};

/// Caches by key `K`, each with what made it (`M`, e.g. the credentials for that key).
pub(crate) struct Registry<K, M> {
    /// Weak, so that a cache (and its refresh timer) lives only as long as a handle uses it.
    caches: Mutex<HashMap<K, (M, WeakTokenCache)>>,
}

impl<K, M> Default for Registry<K, M> {
    fn default() -> Self {
        Registry {
            caches: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, M: Clone> Registry<K, M> {
    /// The cache in use for `key` (with what made it), or a new one from `make`, registered.
    pub(crate) fn get_or_insert_with<F>(&self, key: &K, make: F) -> (M, TokenCache)
    where
        K: Clone,
        F: FnOnce() -> (M, TokenCache),
    {
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made, cache)) = caches.get(key)
            && let Some(cache) = cache.upgrade()
        {
            return (made.clone(), cache);
        }
        // Forget the keys nobody uses any more.
        caches.retain(|_, (_, cache)| cache.is_alive());
        let (made, cache) = make();
        caches.insert(key.clone(), (made.clone(), cache.downgrade()));
        (made, cache)
    }

    /// How many keys are registered (live or not yet forgotten).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn cache() -> TokenCache {
        TokenCache::new(|| async { Err(Error::Internal("unused".into())) })
    }

    #[test]
    fn one_cache_per_key_dropped_with_its_last_handle() {
        let registry: Registry<&str, u32> = Registry::default();
        let (one, a) = registry.get_or_insert_with(&"a", || (1, cache()));
        let (again, same) = registry.get_or_insert_with(&"a", || (2, cache()));
        assert_eq!((one, again), (1, 1));
        assert!(a.ptr_eq(&same));
        let (_, b) = registry.get_or_insert_with(&"b", || (3, cache()));
        assert!(!a.ptr_eq(&b));
        drop((a, same));
        // A dead key gets a new cache.
        let (made, _a) = registry.get_or_insert_with(&"a", || (4, cache()));
        assert_eq!(made, 4);
        assert_eq!(registry.len(), 2);
    }
}
