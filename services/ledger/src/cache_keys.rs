//! The Redis keys ledger caches under and how long entries live: one owner for what
//! the import (which moves the generation on) and the lookups (which read under it)
//! must agree on.

use std::time::Duration;

/// The generation counter of every cached payment lookup; an import moves it on.
pub const PAYMENTS_GENERATION: &str = "ledger:payments:generation";

/// How long a cached payment or disclosure page may live; also bounds staleness if an
/// invalidation could not reach Redis.
pub const CACHE_TTL: Duration = Duration::from_secs(120);

/// Every program, as one cached list.
pub const PROGRAMS: &str = "ledger:programs";
pub const PROGRAMS_TTL: Duration = Duration::from_secs(600);
