//! A local WeChat for development and tests (issue 11, point 7): WeChat's
//! server API as the gateway calls it, messages pushed to the gateway's
//! webhook signed and encrypted exactly as WeChat pushes them, and a chat
//! page where one types 查询 as a citizen. It is a development tool: nothing
//! runs it unless a developer or a test starts it, and it is in no manifest.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use huimin_wechat_sim::{SimConfig, WeChatSim};
//! let sim = WeChatSim::start(SimConfig::dev("http://127.0.0.1:8080/wechat")).await?;
//! let reply = sim.send_text("o-demo-citizen-1", "查询").await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod config;
pub mod multipart;
pub mod oauth;
pub mod page;
pub mod push;
pub mod state;
pub mod wire;
pub mod xml;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    push::Pusher,
    state::{Media, State, unix_now},
};
pub use crate::{
    push::{Delivery, Event, Inbound, Message, Mode, Passive, PushError},
    state::{ChatLine, CustomerMessage, Received},
};

/// A citizen the chat page offers to play.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoCitizen {
    pub openid: String,
    /// What the page shows, e.g. `演示居民一`.
    pub label: String,
}

/// The Official Account the sim plays WeChat for; must match the gateway's.
#[derive(Clone)]
pub struct SimConfig {
    /// Where the sim listens; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The server-configuration Token.
    pub token: String,
    pub appid: String,
    pub appsecret: String,
    /// The 43-character EncodingAESKey; required for compatible and safe mode.
    pub aes_key: Option<String>,
    pub mode: Mode,
    /// The gateway's webhook, e.g. `http://127.0.0.1:8080/wechat`.
    pub webhook_url: String,
    /// The account's original id (`gh_…`), ToUserName of every push.
    pub account: String,
    /// How long WeChat waits for a passive reply (5 s).
    pub reply_timeout: Duration,
    pub citizens: Vec<DemoCitizen>,
}

impl std::fmt::Debug for SimConfig {
    /// The token, secret and key stay out of logs, even a dev account's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("addr", &self.addr)
            .field("appid", &self.appid)
            .field("mode", &self.mode)
            .field("webhook_url", &self.webhook_url)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// The development account `scripts/up` and the tests use, plain mode.
    pub fn dev(webhook_url: &str) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "huimindev".to_owned(),
            appid: "wxhuimindev00000".to_owned(),
            appsecret: "huimin-dev-secret".to_owned(),
            aes_key: None,
            mode: Mode::Plain,
            webhook_url: webhook_url.to_owned(),
            account: "gh_huimindev0001".to_owned(),
            reply_timeout: Duration::from_secs(5),
            citizens: demo_citizens(),
        }
    }
}

/// The citizens the chat page lists; any other openid can be typed.
pub fn demo_citizens() -> Vec<DemoCitizen> {
    (1..=3)
        .map(|n| DemoCitizen {
            openid: format!("o-demo-citizen-{n}"),
            label: format!("演示居民{}", ["一", "二", "三"][n - 1]),
        })
        .collect()
}

/// The starting point: `WeChatSim::start(config)`.
pub struct WeChatSim;

impl WeChatSim {
    /// Binds `config.addr` and serves the API, OAuth and chat page until the
    /// returned [`Sim`] is dropped or shut down.
    pub async fn start(config: SimConfig) -> anyhow::Result<Sim> {
        Sim::start(config).await
    }
}

/// What the chat page and the library calls share.
pub struct Core {
    pub state: Arc<State>,
    pub pusher: Pusher,
    next_msg_id: AtomicU64,
    /// The sim's own base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
}

impl Core {
    /// Pushes what `openid` does, as WeChat would, and keeps the
    /// conversation for the chat page.
    pub async fn act(
        &self,
        openid: &str,
        inbound: Inbound,
        retry: bool,
    ) -> Result<Delivery, PushError> {
        let msg_id = match inbound {
            Inbound::Event(_) => None,
            _ => Some(self.next_msg_id.fetch_add(1, Ordering::Relaxed)),
        };
        let message = Message {
            openid: openid.to_owned(),
            create_time: unix_now(),
            msg_id,
            inbound,
        };
        self.push(&message, retry).await
    }

    /// Pushes a prepared message (tests repeat one to play WeChat's retry).
    pub async fn push(&self, message: &Message, retry: bool) -> Result<Delivery, PushError> {
        let openid = message.openid.as_str();
        let (line, media_id) = match &message.inbound {
            Inbound::Text(text) => (text.clone(), None),
            Inbound::Image { media_id, .. } => ("[图片]".to_owned(), Some(media_id.clone())),
            Inbound::Event(Event::Subscribe) => ("[关注公众号]".to_owned(), None),
            Inbound::Event(Event::Unsubscribe) => ("[取消关注]".to_owned(), None),
            Inbound::Event(Event::Click(key)) => (format!("[菜单 {key}]"), None),
            Inbound::Event(Event::View(url)) => (format!("[打开 {url}]"), None),
        };
        self.state.chat(openid, "citizen", line, media_id);
        if message.inbound != Inbound::Event(Event::Unsubscribe) {
            self.state.citizen_interacted(openid);
        }
        let result = self.pusher.push(message, retry).await;
        match &result {
            Ok(delivery) => match &delivery.passive {
                Passive::Text(text) => self.state.chat(openid, "reply", text.clone(), None),
                Passive::Image { media_id } => {
                    self.state
                        .chat(openid, "reply", "[图片]".to_owned(), Some(media_id.clone()))
                }
                Passive::Other { msg_type, .. } => {
                    self.state
                        .chat(openid, "reply", format!("[{msg_type} 消息]"), None)
                }
                Passive::Empty | Passive::Success => {}
            },
            Err(error) => self
                .state
                .chat(openid, "note", format!("推送失败：{error}"), None),
        }
        result
    }

    /// Stores `bytes` as temporary media and pushes an image message with its media_id.
    pub async fn image(&self, openid: &str, bytes: Vec<u8>) -> Result<Delivery, PushError> {
        let content_type = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let media_id = self.state.put_media(Media {
            bytes,
            content_type: content_type.to_owned(),
        });
        let pic_url = push::pic_url(&self.base_url, &media_id);
        self.act(openid, Inbound::Image { media_id, pic_url }, false)
            .await
    }
}

/// A running local WeChat.
pub struct Sim {
    addr: SocketAddr,
    core: Arc<Core>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    async fn start(config: SimConfig) -> anyhow::Result<Sim> {
        let crypt = match (&config.aes_key, config.mode) {
            (Some(key), _) => {
                Some(wire::Crypt::new(key, &config.appid).map_err(anyhow::Error::msg)?)
            }
            (None, Mode::Plain) => None,
            (None, mode) => anyhow::bail!("{mode:?} mode needs an EncodingAESKey"),
        };
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding the local WeChat to {}", config.addr))?;
        let addr = listener
            .local_addr()
            .context("the local WeChat's address")?;
        let base_url = format!("http://{addr}");
        let pusher = Pusher {
            token: config.token.clone(),
            appid: config.appid.clone(),
            account: config.account.clone(),
            mode: config.mode,
            crypt,
            webhook_url: config.webhook_url.clone(),
            reply_timeout: config.reply_timeout,
            client: client::HttpClient::default(),
        };
        let state = Arc::new(State::new(config));
        let core = Arc::new(Core {
            state: state.clone(),
            pusher,
            next_msg_id: AtomicU64::new(push::first_msg_id()),
            base_url,
        });
        let app = axum::Router::new()
            .merge(api::router().with_state(state.clone()))
            .merge(oauth::router().with_state(state))
            .merge(page::router().with_state(core.clone()));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "local wechat stopped");
            }
        });
        Ok(Sim {
            addr,
            core,
            shutdown,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give the gateway as `HUIMIN_WECHAT_API_BASE` (and
    /// `HUIMIN_WECHAT_OAUTH_BASE`): the sim serves both.
    pub fn api_base(&self) -> String {
        self.core.base_url.clone()
    }

    /// The chat page.
    pub fn chat_url(&self) -> String {
        format!("{}/", self.core.base_url)
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// `openid` types `text`; the passive reply, decrypted and read.
    pub async fn send_text(&self, openid: &str, text: &str) -> Result<Passive, PushError> {
        Ok(self
            .core
            .act(openid, Inbound::Text(text.to_owned()), false)
            .await?
            .passive)
    }

    pub async fn send_event(&self, openid: &str, event: Event) -> Result<Passive, PushError> {
        Ok(self
            .core
            .act(openid, Inbound::Event(event), false)
            .await?
            .passive)
    }

    /// `openid` sends a photo: the bytes go into the media store and an
    /// image message with that media_id is pushed.
    pub async fn send_image(&self, openid: &str, bytes: Vec<u8>) -> Result<Passive, PushError> {
        Ok(self.core.image(openid, bytes).await?.passive)
    }

    /// Pushes `message` as WeChat does when the webhook is slow: up to three
    /// attempts, each after the reply timeout, all with the same MsgId.
    pub async fn push_with_retries(&self, message: &Message) -> Result<Delivery, PushError> {
        self.core.push(message, true).await
    }

    /// A text message with a fresh MsgId, not yet sent (for [`Sim::push_with_retries`]
    /// or to send the same one twice).
    pub fn text_message(&self, openid: &str, text: &str) -> Message {
        Message {
            openid: openid.to_owned(),
            create_time: unix_now(),
            msg_id: Some(self.core.next_msg_id.fetch_add(1, Ordering::Relaxed)),
            inbound: Inbound::Text(text.to_owned()),
        }
    }

    /// Customer-service messages sent to `openid` so far.
    pub fn customer_messages(&self, openid: &str) -> Vec<CustomerMessage> {
        self.core.state.customer_messages(openid)
    }

    /// The first customer-service message to `openid`, already there or
    /// arriving within `timeout` (a late reply).
    pub async fn wait_customer_message(
        &self,
        openid: &str,
        timeout: Duration,
    ) -> Option<CustomerMessage> {
        self.wait_customer_messages(openid, 1, timeout)
            .await
            .into_iter()
            .next()
    }

    /// Waits until `openid` has at least `count` customer-service messages
    /// or `timeout` passes; returns those there are.
    pub async fn wait_customer_messages(
        &self,
        openid: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<CustomerMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            // Created before looking, so a message arriving in between still wakes us.
            let arrived = self.core.state.customer_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let messages = self.customer_messages(openid);
            if messages.len() >= count {
                return messages;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return messages;
            };
            if tokio::time::timeout(left, arrived).await.is_err() {
                return self.customer_messages(openid);
            }
        }
    }

    /// Template messages sent so far (notify).
    pub fn template_messages(&self) -> Vec<serde_json::Value> {
        self.core.state.templates()
    }

    /// The menu the gateway created, if any.
    pub fn menu(&self) -> Option<serde_json::Value> {
        self.core.state.menu()
    }

    /// Every API call received, in order (tokens and secrets left out).
    pub fn received(&self) -> Vec<Received> {
        self.core.state.received()
    }

    /// Makes every access_token issued so far expire now (42001 on next use).
    pub fn expire_tokens(&self) {
        self.core.state.expire_tokens();
    }

    /// The media stored under `media_id` (what a citizen sent, or the gateway uploaded).
    pub fn media(&self, media_id: &str) -> Option<Vec<u8>> {
        self.core.state.media(media_id).map(|m| m.bytes)
    }

    /// An OAuth authorization link that signs in as `openid` and comes back
    /// to `redirect` with a code.
    pub fn oauth_url(&self, openid: &str, redirect: &str) -> String {
        oauth::authorize_url(
            &self.core.base_url,
            &self.core.state.config.appid,
            openid,
            redirect,
            "sim",
        )
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
