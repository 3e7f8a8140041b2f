//! Dedupe of WeChat's retries: the first delivery of a message runs its work once, and every
//! retry gets the same reply.
//!
//! WeChat retries a push it got no answer to within 5 s, three times in all, possibly while
//! the first is still running and on another replica. So the claim lives in Redis (`SET NX`
//! of a pending marker, then the reply over it, both with a short TTL): a retry that finds
//! the reply answers with it, one that finds the marker waits briefly for the reply and
//! otherwise answers `success` (the first one answers the citizen).
//!
//! Redis down: a bounded map in this replica's memory takes over. Retries that reach this
//! replica are still answered once; one that reaches another replica runs the work again —
//! the price of answering at all, which is what matters to the citizen waiting.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use huimin_kit::cache::Cache;
use serde::{Deserialize, Serialize};

/// How long a claim and its reply are kept: WeChat's three retries span about 15 s.
pub const TTL: Duration = Duration::from_secs(30);
/// How often a waiting retry looks for the first delivery's reply.
const POLL: Duration = Duration::from_millis(25);
/// Entries the in-memory fallback holds at most; past it (after dropping expired ones) a
/// message is handled without dedupe rather than refused.
const MEMORY_ENTRIES: usize = 10_000;

/// A reply as kept for retries: the conversation's answer, before it is sealed for a mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kept {
    Text(String),
    /// Nothing to say now: `success` (also kept when the answer went out late).
    Nothing,
}

#[derive(Debug, Serialize, Deserialize)]
enum Entry {
    Pending,
    Done(Kept),
}

/// Where a claim was taken, so its reply is written to the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Redis,
    Memory,
    /// The memory map was full: no dedupe for this one.
    Nowhere,
}

/// What a delivery found.
#[derive(Debug)]
pub enum Claim {
    /// The first delivery: do the work, then [`Dedupe::finish`].
    First(Store),
    /// A retry of a message already answered.
    Done(Kept),
    /// A retry while the first is still running.
    Pending(Store),
}

#[derive(Clone)]
pub struct Dedupe {
    cache: Cache,
    memory: Arc<Mutex<HashMap<String, (Instant, Entry)>>>,
}

fn redis_key(key: &str) -> String {
    format!("webhook:dedupe:{key}")
}

fn encode(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(entry).unwrap_or_default()
}

impl Dedupe {
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            memory: Arc::default(),
        }
    }

    /// Claims `key` (an [`huimin_wechat::Inbound::dedupe_key`]).
    pub async fn claim(&self, key: &str) -> Claim {
        let rkey = redis_key(key);
        match self.cache.claim(&rkey, &encode(&Entry::Pending), TTL).await {
            Ok(true) => return Claim::First(Store::Redis),
            Ok(false) => match self.cache.get_shared(&rkey).await {
                Ok(Some(bytes)) => {
                    return match serde_json::from_slice::<Entry>(&bytes) {
                        Ok(Entry::Done(kept)) => Claim::Done(kept),
                        _ => Claim::Pending(Store::Redis),
                    };
                }
                // Expired between the two calls: the first is long done; answer once more.
                Ok(None) => return Claim::Done(Kept::Nothing),
                Err(_) => {}
            },
            Err(_) => {}
        }
        self.claim_in_memory(key)
    }

    fn claim_in_memory(&self, key: &str) -> Claim {
        let now = Instant::now();
        let mut map = self
            .memory
            .lock()
            .expect("dedupe map lock is never poisoned");
        if let Some((expires, entry)) = map.get(key)
            && *expires > now
        {
            return match entry {
                Entry::Done(kept) => Claim::Done(kept.clone()),
                Entry::Pending => Claim::Pending(Store::Memory),
            };
        }
        if map.len() >= MEMORY_ENTRIES {
            map.retain(|_, (expires, _)| *expires > now);
            if map.len() >= MEMORY_ENTRIES {
                return Claim::First(Store::Nowhere);
            }
        }
        map.insert(key.to_owned(), (now + TTL, Entry::Pending));
        Claim::First(Store::Memory)
    }

    /// Keeps the reply of the first delivery for its retries.
    pub async fn finish(&self, key: &str, store: Store, kept: &Kept) {
        match store {
            Store::Redis => {
                let entry = encode(&Entry::Done(kept.clone()));
                if self
                    .cache
                    .put_shared(&redis_key(key), &entry, TTL)
                    .await
                    .is_err()
                {
                    // The pending marker expires by TTL; retries meanwhile answer `success`.
                    tracing::warn!("dedupe reply not kept; retries will answer success");
                }
            }
            Store::Memory => {
                let mut map = self
                    .memory
                    .lock()
                    .expect("dedupe map lock is never poisoned");
                map.insert(
                    key.to_owned(),
                    (Instant::now() + TTL, Entry::Done(kept.clone())),
                );
            }
            Store::Nowhere => {}
        }
    }

    /// Waits until `until` for the first delivery's reply; `None` if it is not there by then.
    pub async fn wait(&self, key: &str, store: Store, until: Instant) -> Option<Kept> {
        loop {
            let found = match store {
                Store::Redis => match self.cache.get_shared(&redis_key(key)).await {
                    Ok(Some(bytes)) => match serde_json::from_slice::<Entry>(&bytes) {
                        Ok(Entry::Done(kept)) => Some(kept),
                        _ => None,
                    },
                    _ => None,
                },
                Store::Memory => {
                    let map = self
                        .memory
                        .lock()
                        .expect("dedupe map lock is never poisoned");
                    match map.get(key) {
                        Some((_, Entry::Done(kept))) => Some(kept.clone()),
                        _ => None,
                    }
                }
                Store::Nowhere => return None,
            };
            if found.is_some() {
                return found;
            }
            if Instant::now() + POLL >= until {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huimin_kit::config::RedisConfig;

    /// A cache whose Redis does not exist: every call is `Unavailable`.
    fn no_redis() -> Dedupe {
        let config = RedisConfig {
            url: secrecy::SecretString::from("redis://127.0.0.1:9".to_owned()),
            cluster_urls: Vec::new(),
            prefix: "test:".to_owned(),
        };
        Dedupe::new(Cache::new(&config))
    }

    #[tokio::test]
    async fn without_redis_a_retry_waits_for_the_first_reply_in_memory() {
        let dedupe = no_redis();
        let Claim::First(store) = dedupe.claim("m:1").await else {
            panic!("first delivery must run");
        };
        assert_eq!(store, Store::Memory);
        assert!(matches!(
            dedupe.claim("m:1").await,
            Claim::Pending(Store::Memory)
        ));
        let waiter = {
            let dedupe = dedupe.clone();
            tokio::spawn(async move {
                dedupe
                    .wait(
                        "m:1",
                        Store::Memory,
                        Instant::now() + Duration::from_secs(2),
                    )
                    .await
            })
        };
        dedupe.finish("m:1", store, &Kept::Text("好".into())).await;
        assert_eq!(waiter.await.expect("joins"), Some(Kept::Text("好".into())));
        assert!(matches!(dedupe.claim("m:1").await, Claim::Done(Kept::Text(t)) if t == "好"));
        assert!(matches!(
            dedupe.claim("m:2").await,
            Claim::First(Store::Memory)
        ));
    }
}
