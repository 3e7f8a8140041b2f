//! Abuse limits per openid and per client IP (binding attempts, disclosure
//! lookups, reports, receipt-code guesses), shared across replicas through
//! Redis; a limited caller gets a polite Chinese reply.
//!
//! Fixed windows: one Redis counter per (action, who, window), counted and
//! given its expiry in one round trip. With Redis down each replica counts
//! in its own memory (bounded), so a caller may get up to one limit per
//! replica until Redis is back — better than no limit or no service.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use huimin_kit::{
    cache::Cache,
    config::{ConfigError, Env},
    openid::OpenId,
};

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Bind,
    Disclosure,
    Report,
    ReceiptGuess,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Bind => "bind",
            Action::Disclosure => "disclosure",
            Action::Report => "report",
            Action::ReceiptGuess => "receipt",
        }
    }

    fn message_zh(self) -> &'static str {
        match self {
            Action::Bind => "绑定尝试次数过多，请一小时后再试。如有疑问请联系村委会。",
            Action::Disclosure => "查询太频繁了，请稍后再试。",
            Action::Report => "今天提交的举报已较多，请明天再试；紧急情况请拨打12388。",
            Action::ReceiptGuess => "回执码尝试次数过多，请一小时后再试。",
        }
    }
}

/// Who is asking: the openid when known (chat, a signed-in page), and the
/// client IP for pages.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub openid: Option<OpenId>,
    pub ip: Option<IpAddr>,
}

/// The caller went over a limit; `message_zh` is what they are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub message_zh: String,
}

/// How many of one action per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_openid: u64,
    /// Many phones share a carrier's address, so an IP gets more.
    pub per_ip: u64,
    pub window: Duration,
}

/// The limits, from `HUIMIN_LIMIT_*` (counts per openid; an IP gets
/// `HUIMIN_LIMIT_IP_FACTOR` times as many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    pub bind: Limit,
    pub disclosure: Limit,
    pub report: Limit,
    pub receipt: Limit,
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

impl LimitsConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let factor: u64 = env.parse_or("HUIMIN_LIMIT_IP_FACTOR", 20)?;
        let limit = |per_openid: u64, window| Limit {
            per_openid,
            per_ip: per_openid.saturating_mul(factor),
            window,
        };
        Ok(Self {
            bind: limit(env.parse_or("HUIMIN_LIMIT_BIND_PER_HOUR", 5)?, HOUR),
            disclosure: limit(env.parse_or("HUIMIN_LIMIT_DISCLOSURE_PER_HOUR", 60)?, HOUR),
            report: limit(env.parse_or("HUIMIN_LIMIT_REPORT_PER_DAY", 5)?, DAY),
            receipt: limit(env.parse_or("HUIMIN_LIMIT_RECEIPT_PER_HOUR", 10)?, HOUR),
        })
    }

    fn of(&self, action: Action) -> Limit {
        match action {
            Action::Bind => self.bind,
            Action::Disclosure => self.disclosure,
            Action::Report => self.report,
            Action::ReceiptGuess => self.receipt,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self::from_env(&Env::from_pairs::<&str, &str>([])).unwrap_or(Self {
            bind: Limit {
                per_openid: 5,
                per_ip: 100,
                window: HOUR,
            },
            disclosure: Limit {
                per_openid: 60,
                per_ip: 1200,
                window: HOUR,
            },
            report: Limit {
                per_openid: 5,
                per_ip: 100,
                window: DAY,
            },
            receipt: Limit {
                per_openid: 10,
                per_ip: 200,
                window: HOUR,
            },
        })
    }
}

/// Counters kept in memory while Redis is down.
const MEMORY_ENTRIES: usize = 50_000;

#[derive(Clone)]
pub struct Limiter {
    config: LimitsConfig,
    cache: Option<Cache>,
    memory: Arc<Mutex<HashMap<String, u64>>>,
}

impl Default for Limiter {
    /// In memory only, default limits (tests of other parts).
    fn default() -> Self {
        Self {
            config: LimitsConfig::default(),
            cache: None,
            memory: Arc::default(),
        }
    }
}

impl Limiter {
    pub fn new(config: LimitsConfig, cache: Cache) -> Self {
        Self {
            config,
            cache: Some(cache),
            memory: Arc::default(),
        }
    }

    /// Counts one `action` by `caller`, or says it is over its limit.
    pub async fn check(&self, action: Action, caller: &Caller) -> Result<(), Limited> {
        let limit = self.config.of(action);
        let window = window_index(limit.window);
        let mut over = false;
        if let Some(openid) = &caller.openid {
            let key = format!("limit:{}:o:{}:{window}", action.as_str(), openid.as_str());
            over |= self.count(&key, limit.window).await > limit.per_openid;
        }
        if let Some(ip) = caller.ip {
            let key = format!("limit:{}:i:{ip}:{window}", action.as_str());
            over |= self.count(&key, limit.window).await > limit.per_ip;
        }
        if over {
            metrics::counter!("gateway_limited_total", "action" => action.as_str()).increment(1);
            tracing::info!(action = action.as_str(), "caller over its limit");
            return Err(Limited {
                message_zh: action.message_zh().to_owned(),
            });
        }
        Ok(())
    }

    async fn count(&self, key: &str, window: Duration) -> u64 {
        if let Some(cache) = &self.cache
            && let Some(count) = cache.count_in_window(key, window).await
        {
            return count;
        }
        let Ok(mut memory) = self.memory.lock() else {
            return 0;
        };
        if memory.len() >= MEMORY_ENTRIES && !memory.contains_key(key) {
            // Old windows' keys pile up; starting over is the bounded choice.
            memory.clear();
        }
        let count = memory.entry(key.to_owned()).or_insert(0);
        *count += 1;
        *count
    }
}

fn window_index(window: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    now / window.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_call_after_the_limit_is_refused_politely() {
        let limiter = Limiter::default();
        let caller = Caller {
            openid: Some(OpenId::parse("o_test").expect("openid")),
            ip: None,
        };
        for _ in 0..5 {
            assert!(limiter.check(Action::Bind, &caller).await.is_ok());
        }
        let refused = limiter
            .check(Action::Bind, &caller)
            .await
            .expect_err("over the limit");
        assert!(refused.message_zh.contains("请一小时后再试"));
        // Another action has its own count.
        assert!(limiter.check(Action::Disclosure, &caller).await.is_ok());
    }

    #[test]
    fn limits_are_configurable() {
        let env = Env::from_pairs([
            ("HUIMIN_LIMIT_BIND_PER_HOUR", "3"),
            ("HUIMIN_LIMIT_IP_FACTOR", "2"),
        ]);
        let config = LimitsConfig::from_env(&env).expect("config");
        assert_eq!(config.bind.per_openid, 3);
        assert_eq!(config.bind.per_ip, 6);
        assert_eq!(config.report.window, DAY);
        assert!(
            LimitsConfig::from_env(&Env::from_pairs([("HUIMIN_LIMIT_BIND_PER_HOUR", "x")]))
                .is_err()
        );
    }
}
