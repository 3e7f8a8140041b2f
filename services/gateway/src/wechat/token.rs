//! The access_token, shared by replicas through Redis with its expiry.
//!
//! `cgi-bin/token` invalidates the previous token (after 5 minutes of overlap), so replicas
//! must not each fetch their own: a fetch is single-flight within the process (a mutex) and
//! across replicas (a short Redis claim; the others wait for the token it stores). A token
//! WeChat calls invalid (40001, 40014, 42001) is dropped — only if it is still the stored
//! one, so a replica with an old copy cannot delete a fresh token — and fetched once more.

use std::time::{Duration, Instant};

use huimin_kit::cache::Cache;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{ApiError, WeChatError, http::Http};

const KEY: &str = "wechat:access_token";
const LOCK: &str = "wechat:access_token:refresh";
/// Kept this much short of WeChat's `expires_in`, so no call carries a token about to lapse.
const MARGIN: Duration = Duration::from_secs(300);
const LOCK_TTL: Duration = Duration::from_secs(5);
const WAIT_FOR_OTHER: Duration = Duration::from_secs(3);

#[derive(Serialize, Deserialize)]
struct Stored {
    token: String,
    /// Unix seconds.
    expires_at: i64,
}

struct Held {
    token: SecretString,
    /// The exact bytes stored in Redis (for compare-and-delete).
    stored: Vec<u8>,
    until: Instant,
}

pub struct Tokens {
    cache: Cache,
    held: Mutex<Option<Held>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<i64>,
    errcode: Option<i64>,
    errmsg: Option<String>,
}

impl Tokens {
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            held: Mutex::new(None),
        }
    }

    /// A valid token: this process's, Redis's, or a fresh one.
    pub async fn get(&self, http: &Http, url: &str) -> Result<SecretString, ApiError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && h.until > Instant::now()
        {
            return Ok(h.token.clone());
        }
        if let Some(h) = self.stored_in_redis().await {
            let token = h.token.clone();
            *held = Some(h);
            return Ok(token);
        }
        let h = match self.cache.claim(LOCK, b"1", LOCK_TTL).await {
            Ok(false) => match self.wait_for_other().await {
                Some(h) => h,
                None => self.fetch(http, url).await?,
            },
            _ => {
                let fetched = self.fetch(http, url).await;
                let _ = self.cache.release(LOCK, b"1").await;
                fetched?
            }
        };
        let token = h.token.clone();
        *held = Some(h);
        Ok(token)
    }

    /// Drops `token` after WeChat called it invalid.
    pub async fn invalidate(&self, token: &SecretString) {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && h.token.expose_secret() == token.expose_secret()
        {
            let _ = self.cache.release(KEY, &h.stored).await;
            *held = None;
        }
    }

    async fn stored_in_redis(&self) -> Option<Held> {
        let bytes = self.cache.get_shared(KEY).await.ok()??;
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        let left = stored.expires_at - chrono::Utc::now().timestamp();
        let left = Duration::from_secs(u64::try_from(left).ok()?);
        Some(Held {
            token: SecretString::from(stored.token),
            stored: bytes,
            until: Instant::now() + left,
        })
    }

    async fn wait_for_other(&self) -> Option<Held> {
        let until = Instant::now() + WAIT_FOR_OTHER;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(h) = self.stored_in_redis().await {
                return Some(h);
            }
        }
        None
    }

    async fn fetch(&self, http: &Http, url: &str) -> Result<Held, ApiError> {
        let answer = http.call(http::Method::GET, url, None, 16 * 1024).await?;
        let parsed: TokenAnswer =
            serde_json::from_slice(&answer.body).map_err(|_| ApiError::Malformed)?;
        let (Some(token), Some(expires_in)) = (parsed.access_token, parsed.expires_in) else {
            return Err(ApiError::WeChat(WeChatError {
                errcode: parsed.errcode.unwrap_or(-1),
                errmsg: parsed.errmsg.unwrap_or_default(),
            }));
        };
        let life =
            Duration::from_secs(u64::try_from(expires_in).unwrap_or(0)).saturating_sub(MARGIN);
        let life = life.max(Duration::from_secs(1));
        let stored = serde_json::to_vec(&Stored {
            token: token.clone(),
            expires_at: chrono::Utc::now().timestamp() + life.as_secs() as i64,
        })
        .map_err(|_| ApiError::Malformed)?;
        // Redis down: this replica keeps its own token; the others fetch theirs.
        let _ = self.cache.put_shared(KEY, &stored, life).await;
        tracing::info!(expires_in, "wechat access_token fetched");
        Ok(Held {
            token: SecretString::from(token),
            stored,
            until: Instant::now() + life,
        })
    }
}
