//! What the local WeChat remembers: access tokens, OAuth codes, media, the
//! menu, every customer-service and template message the gateway sent, and
//! the conversation the chat page shows. One process, in memory, gone on
//! restart — it is a development tool, and tests want a fresh one each.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rand::Rng as _;
use serde::Serialize;
use tokio::sync::Notify;

use crate::SimConfig;

/// How long an access_token lives (WeChat's `expires_in`).
pub const TOKEN_TTL: Duration = Duration::from_secs(7200);
/// After a re-fetch the previous token still works this long (WeChat's rule).
pub const TOKEN_OVERLAP: Duration = Duration::from_secs(300);
/// An OAuth code is single-use and lives five minutes.
pub const CODE_TTL: Duration = Duration::from_secs(300);
/// WeChat lets an account answer through customer-service messages only
/// within 48 hours of the citizen's last message or event.
pub const CUSTOMER_WINDOW: Duration = Duration::from_secs(48 * 3600);
/// How many customer-service messages one interaction allows here. WeChat's
/// real quota is not published; 20 is generous for a conversation and low
/// enough that a runaway loop meets 45047 in a test.
pub const CUSTOMER_MESSAGES_PER_INTERACTION: u32 = 20;

/// A customer-service message (客服消息) the gateway sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CustomerMessage {
    pub touser: String,
    pub msgtype: String,
    /// `text.content` for text messages.
    pub text: Option<String>,
    /// The whole JSON body as received.
    pub body: serde_json::Value,
}

/// One line of a citizen's conversation, for the chat page.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLine {
    pub seq: u64,
    /// `citizen`, `reply` (passive), `later` (customer-service) or `note` (the sim's own).
    pub from: &'static str,
    pub text: String,
    /// Set for an image the citizen sent or received.
    pub media_id: Option<String>,
}

/// An API call as received (secrets and tokens left out), for tests.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub errcode: i64,
}

#[derive(Debug, Clone)]
pub struct Media {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

#[derive(Debug)]
struct Token {
    expires: Instant,
    /// From `stable_token`, whose tokens are kept apart from `cgi-bin/token`'s.
    stable: bool,
}

#[derive(Debug)]
struct Code {
    openid: String,
    expires: Instant,
    used: bool,
}

#[derive(Debug, Default)]
struct Interaction {
    last: Option<Instant>,
    sent_since: u32,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: HashMap<String, Token>,
    codes: HashMap<String, Code>,
    media: HashMap<String, Media>,
    menu: Option<serde_json::Value>,
    customer: Vec<CustomerMessage>,
    templates: Vec<serde_json::Value>,
    received: Vec<Received>,
    chat: HashMap<String, Vec<ChatLine>>,
    interactions: HashMap<String, Interaction>,
    seq: u64,
}

/// Everything the handlers share.
pub struct State {
    pub config: SimConfig,
    inner: Mutex<Inner>,
    /// Woken whenever a customer-service message arrives.
    pub customer_arrived: Notify,
}

/// Why a token or code was refused, as WeChat's errcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    Expired,
    Used,
}

pub fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    pub fn new(config: SimConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            customer_arrived: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new access_token; the previous ones of the same kind stay valid
    /// for [`TOKEN_OVERLAP`] (or less if they were about to expire).
    pub fn issue_token(&self, stable: bool) -> String {
        let now = Instant::now();
        let mut inner = self.lock();
        for token in inner.tokens.values_mut().filter(|t| t.stable == stable) {
            token.expires = token.expires.min(now + TOKEN_OVERLAP);
        }
        let token = random_token(64);
        inner.tokens.insert(
            token.clone(),
            Token {
                expires: now + TOKEN_TTL,
                stable,
            },
        );
        token
    }

    /// The newest unexpired stable token, which `stable_token` hands out
    /// again until it is force-refreshed.
    pub fn current_stable_token(&self) -> Option<(String, Duration)> {
        let now = Instant::now();
        self.lock()
            .tokens
            .iter()
            .filter(|(_, t)| t.stable && t.expires > now)
            .max_by_key(|(_, t)| t.expires)
            .map(|(token, t)| (token.clone(), t.expires - now))
    }

    pub fn check_token(&self, token: &str) -> Result<(), Refusal> {
        match self.lock().tokens.get(token) {
            None => Err(Refusal::Invalid),
            Some(t) if t.expires <= Instant::now() => Err(Refusal::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Makes every token issued so far expired (42001), as two hours would.
    pub fn expire_tokens(&self) {
        let past = Instant::now();
        for token in self.lock().tokens.values_mut() {
            token.expires = past;
        }
    }

    pub fn issue_code(&self, openid: &str) -> String {
        let code = random_token(32);
        self.lock().codes.insert(
            code.clone(),
            Code {
                openid: openid.to_owned(),
                expires: Instant::now() + CODE_TTL,
                used: false,
            },
        );
        code
    }

    /// The openid a code was issued for; the code is spent.
    pub fn redeem_code(&self, code: &str) -> Result<String, Refusal> {
        let mut inner = self.lock();
        let entry = inner.codes.get_mut(code).ok_or(Refusal::Invalid)?;
        if entry.used {
            return Err(Refusal::Used);
        }
        if entry.expires <= Instant::now() {
            return Err(Refusal::Expired);
        }
        entry.used = true;
        Ok(entry.openid.clone())
    }

    pub fn put_media(&self, media: Media) -> String {
        let id = random_token(40);
        self.lock().media.insert(id.clone(), media);
        id
    }

    pub fn media(&self, media_id: &str) -> Option<Media> {
        self.lock().media.get(media_id).cloned()
    }

    pub fn set_menu(&self, menu: serde_json::Value) {
        self.lock().menu = Some(menu);
    }

    pub fn menu(&self) -> Option<serde_json::Value> {
        self.lock().menu.clone()
    }

    /// The citizen wrote or tapped something: opens the customer-service window.
    pub fn citizen_interacted(&self, openid: &str) {
        let mut inner = self.lock();
        let entry = inner.interactions.entry(openid.to_owned()).or_default();
        entry.last = Some(Instant::now());
        entry.sent_since = 0;
    }

    /// Whether a customer-service message may go to `openid` now, as
    /// WeChat's errcode when not (45015 outside the window, 45047 over quota).
    pub fn customer_allowed(&self, openid: &str) -> Result<(), i64> {
        let mut inner = self.lock();
        let entry = inner.interactions.entry(openid.to_owned()).or_default();
        match entry.last {
            Some(last) if last.elapsed() < CUSTOMER_WINDOW => {}
            _ => return Err(45015),
        }
        if entry.sent_since >= CUSTOMER_MESSAGES_PER_INTERACTION {
            return Err(45047);
        }
        entry.sent_since += 1;
        Ok(())
    }

    pub fn record_customer(&self, message: CustomerMessage) {
        let line = message
            .text
            .clone()
            .unwrap_or_else(|| format!("[{}]", message.msgtype));
        let openid = message.touser.clone();
        self.lock().customer.push(message);
        self.chat(&openid, "later", line, None);
        self.customer_arrived.notify_waiters();
    }

    pub fn customer_messages(&self, openid: &str) -> Vec<CustomerMessage> {
        self.lock()
            .customer
            .iter()
            .filter(|m| m.touser == openid)
            .cloned()
            .collect()
    }

    pub fn record_template(&self, body: serde_json::Value) {
        let openid = body["touser"].as_str().unwrap_or_default().to_owned();
        let line = format!("[模板消息] {}", body["data"]);
        self.lock().templates.push(body);
        self.chat(&openid, "later", line, None);
    }

    pub fn templates(&self) -> Vec<serde_json::Value> {
        self.lock().templates.clone()
    }

    pub fn record_call(&self, method: &str, path: &str, errcode: i64) {
        self.lock().received.push(Received {
            method: method.to_owned(),
            path: path.to_owned(),
            errcode,
        });
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Adds a line to `openid`'s conversation.
    pub fn chat(&self, openid: &str, from: &'static str, text: String, media_id: Option<String>) {
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        inner
            .chat
            .entry(openid.to_owned())
            .or_default()
            .push(ChatLine {
                seq,
                from,
                text,
                media_id,
            });
    }

    /// `openid`'s conversation after line `after`.
    pub fn chat_since(&self, openid: &str, after: u64) -> Vec<ChatLine> {
        self.lock()
            .chat
            .get(openid)
            .map(|lines| lines.iter().filter(|l| l.seq > after).cloned().collect())
            .unwrap_or_default()
    }
}
