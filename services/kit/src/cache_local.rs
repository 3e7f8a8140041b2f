//! Decoded values of generation-keyed entries, kept in this process.
//!
//! Redis's client-side cache already answers a hot `MGET` from memory, but it answers
//! with bytes, and every read then decoded a whole page of JSON. This map keeps what a
//! read decoded (or a write encoded) beside the generation it was written under, so a hot
//! read is one tracked `GET` of the counter and a map lookup. An entry is used only while
//! the counter still holds its generation and its lifetime has not passed: the counter is
//! the one source of truth, exactly as for the entries in Redis. Bounded by entry count
//! and by the bytes the entries took in Redis, least recently used first out.

use std::{
    any::Any,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// At most this many decoded values per process.
const MAX_ENTRIES: usize = 16_384;
/// At most this many bytes of their encoded form (a page of 200 payments is ~100 KB); the
/// decoded values take a few times that.
const MAX_BYTES: usize = 32 << 20;

type Value = Arc<dyn Any + Send + Sync>;

struct Kept {
    generation: u64,
    expires: Instant,
    bytes: usize,
    value: Value,
}

struct Entries {
    map: lru::LruCache<String, Kept>,
    bytes: usize,
}

pub(crate) struct Local {
    entries: Mutex<Entries>,
}

impl Local {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(Entries {
                map: lru::LruCache::new(NonZeroUsize::new(MAX_ENTRIES).expect("not zero")),
                bytes: 0,
            }),
        }
    }

    /// The value kept for `key` if it was written under `generation` and is still alive.
    pub(crate) fn get<T: Send + Sync + 'static>(
        &self,
        key: &str,
        generation: u64,
    ) -> Option<Arc<T>> {
        let mut entries = self.entries.lock().ok()?;
        let kept = entries.map.peek(key)?;
        if kept.generation != generation || kept.expires <= Instant::now() {
            return None;
        }
        let value = kept.value.clone().downcast::<T>().ok();
        // Only a value served counts as used.
        entries.map.promote(key);
        value
    }

    /// Forgets `key` (its entry in Redis was deleted).
    pub(crate) fn remove(&self, key: &str) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some(out) = entries.map.pop(key) {
            entries.bytes -= out.bytes;
        }
    }

    /// Keeps `value`, written under `generation`, for `ttl`; `bytes` is its encoded size.
    pub(crate) fn put<T: Send + Sync + 'static>(
        &self,
        key: String,
        generation: u64,
        value: Arc<T>,
        bytes: usize,
        ttl: Duration,
    ) {
        if bytes > MAX_BYTES / 16 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let kept = Kept {
            generation,
            expires: Instant::now() + ttl,
            bytes,
            value,
        };
        entries.bytes += bytes;
        // `push` hands back what it replaced or, when full, what it evicted.
        if let Some((_, out)) = entries.map.push(key, kept) {
            entries.bytes -= out.bytes;
        }
        while entries.bytes > MAX_BYTES {
            let Some((_, out)) = entries.map.pop_lru() else {
                break;
            };
            entries.bytes -= out.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_value_is_served_only_under_the_generation_it_was_written_under() {
        let local = Local::new();
        local.put("k".into(), 7, Arc::new("page".to_owned()), 4, TTL);
        assert_eq!(
            local.get::<String>("k", 7).as_deref().map(String::as_str),
            Some("page")
        );
        assert!(local.get::<String>("k", 8).is_none());
        assert!(
            local.get::<u64>("k", 7).is_none(),
            "another type is not this value"
        );
    }

    #[test]
    fn a_value_past_its_lifetime_is_not_served() {
        let local = Local::new();
        local.put("k".into(), 1, Arc::new(true), 4, Duration::ZERO);
        assert!(local.get::<bool>("k", 1).is_none());
    }

    #[test]
    fn the_bytes_kept_stay_under_the_bound() {
        let local = Local::new();
        let size = MAX_BYTES / 32;
        for i in 0..100 {
            local.put(format!("k{i}"), 1, Arc::new(i), size, TTL);
        }
        let entries = local.entries.lock().expect("not poisoned");
        assert!(entries.bytes <= MAX_BYTES);
        assert_eq!(entries.bytes, entries.map.len() * size);
        assert!(entries.map.contains("k99") && !entries.map.contains("k0"));
    }

    #[test]
    fn a_removed_value_is_not_served_and_its_bytes_are_freed() {
        let local = Local::new();
        local.put("k".into(), 1, Arc::new(1), 10, TTL);
        local.remove("k");
        assert!(local.get::<i32>("k", 1).is_none());
        assert_eq!(local.entries.lock().expect("not poisoned").bytes, 0);
    }

    #[test]
    fn replacing_a_value_does_not_count_its_bytes_twice() {
        let local = Local::new();
        local.put("k".into(), 1, Arc::new(1), 10, TTL);
        local.put("k".into(), 2, Arc::new(2), 30, TTL);
        assert_eq!(local.entries.lock().expect("not poisoned").bytes, 30);
        assert_eq!(local.get::<i32>("k", 2).as_deref(), Some(&2));
    }
}
