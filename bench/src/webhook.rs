//! Phase 4, the webhook: `查询` text messages from bound openids, in safe (AES) mode, pushed
//! to the gateway's `/wechat` the way WeChat pushes them (URL signature, msg_signature, a
//! sealed body, a fresh MsgId each so no reply comes from the dedupe store), against an
//! empty axum handler that reads the same body and answers `success`, driven by the same
//! closed-loop HTTP/1.1 client at the same concurrency.
//!
//! The pages are warm (the lookup phase, or a first pass here, put them in the cache), so
//! what is measured is the edge: signature, decryption, XML, dedupe claim in Redis, the
//! gRPC calls to identity and ledger, formatting, sealing the reply.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::{Context as _, bail};
use axum::{Router, body::Bytes, routing::post};
use huimin_wechat::{
    AesKey, MsgCrypt, signature,
    xml::{EncryptedReply, Envelope, Reply},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::lookup::{Load, Shape, closed_loop};

/// The Official Account the bench's gateway is configured with (see `Scratch::env`).
pub const TOKEN: &str = "huiminbench";
pub const APPID: &str = "wxbench000000000";
/// A throwaway EncodingAESKey (43 characters of [a-zA-Z0-9]).
pub const AES_KEY: &str = "benchbenchbenchbenchbenchbenchbenchbench123";
const ACCOUNT: &str = "gh_huiminbench01";

/// What one pushed message needs: where, and how it is sealed.
#[derive(Clone)]
struct Pusher {
    url: String,
    /// What the citizen types (`查询` unless `--webhook-text` says otherwise).
    text: Arc<str>,
    crypt: Arc<MsgCrypt>,
    msg_ids: Arc<AtomicU64>,
}

impl Pusher {
    fn new(addr: SocketAddr, text: &str) -> anyhow::Result<Self> {
        let key = AesKey::parse(AES_KEY).map_err(|e| anyhow::anyhow!("bench AES key: {e:?}"))?;
        Ok(Self {
            url: format!("http://{addr}/wechat"),
            text: text.into(),
            crypt: Arc::new(MsgCrypt::new(key, APPID)),
            msg_ids: Arc::new(AtomicU64::new(6_054_768_590_064_713_728)),
        })
    }

    /// The text from `openid`, sealed in safe mode: (URL with its query, body).
    fn push(&self, openid: &str) -> (String, String) {
        let text = &self.text;
        let msg_id = self.msg_ids.fetch_add(1, Ordering::Relaxed);
        let now = chrono::Utc::now().timestamp().to_string();
        let nonce = (msg_id % 1_000_000_007).to_string();
        let xml = format!(
            "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        );
        let encrypt = self.crypt.encrypt_random(&xml);
        let url_signature = signature::sign(TOKEN, &[&now, &nonce]);
        let msg_signature = signature::sign(TOKEN, &[&now, &nonce, &encrypt]);
        let url = format!(
            "{}?signature={url_signature}&timestamp={now}&nonce={nonce}&openid={openid}&encrypt_type=aes&msg_signature={msg_signature}",
            self.url
        );
        let body = Envelope {
            to_user: Some(ACCOUNT.to_owned()),
            encrypt,
        }
        .to_xml();
        (url, body)
    }

    /// The text of a sealed passive reply, after checking its signature.
    fn open(&self, body: &str) -> anyhow::Result<String> {
        let sealed = EncryptedReply::parse(body.as_bytes())
            .map_err(|e| anyhow::anyhow!("not a sealed reply ({e:?}): {body:.200}"))?;
        if !sealed.verify(TOKEN) {
            bail!("the reply's msg_signature does not verify");
        }
        let xml = self
            .crypt
            .decrypt_for_app(&sealed.encrypt)
            .map_err(|e| anyhow::anyhow!("the reply does not open: {e:?}"))?;
        match Reply::parse(xml.as_bytes()) {
            Ok(Reply::Text { content, .. }) => Ok(content),
            other => bail!("not a text reply: {other:?}"),
        }
    }
}

/// Checks the gateway answers `text` for each bound openid (`查询` with their payments, an
/// amount in 元), which also warms every page the measured load reads.
pub async fn check_replies(
    gateway: SocketAddr,
    openids: &[String],
    text: &str,
) -> anyhow::Result<()> {
    let pusher = Pusher::new(gateway, text)?;
    let client = reqwest::Client::new();
    for openid in openids {
        let (url, body) = pusher.push(openid);
        let response = client
            .post(&url)
            .body(body)
            .send()
            .await
            .context("pushing a message to the gateway")?;
        let text = response.text().await.context("reading the reply")?;
        let content = pusher.open(&text)?;
        if text == "查询" && !content.contains('元') {
            bail!("查询 did not answer with payments: {content}");
        }
    }
    Ok(())
}

/// `text` pushed for the bound openids, round robin, against the gateway at `gateway`.
pub async fn load(
    gateway: SocketAddr,
    openids: &[String],
    text: &str,
    shape: Shape,
) -> anyhow::Result<Load> {
    let pusher = Pusher::new(gateway, text)?;
    let openids: Arc<Vec<String>> = Arc::new(openids.to_vec());
    drive("huimin webhook", shape, move |client, worker| {
        let (url, body) = pusher.push(&openids[worker % openids.len()]);
        async move {
            let response = client.post(&url).body(body).send().await?;
            if !response.status().is_success() {
                bail!("the webhook answered {}", response.status());
            }
            let text = response.text().await?;
            // A reply sealed in time, not `success` (late) or a refusal.
            if !text.starts_with("<xml>") {
                bail!("not a passive reply: {text:.200}");
            }
            Ok(())
        }
    })
    .await
}

/// Keeps `shape.concurrency` HTTP/1.1 requests in flight (one keep-alive connection each)
/// with the same closed loop as the gRPC loads.
async fn drive<F, Fut>(label: &str, shape: Shape, call: F) -> anyhow::Result<Load>
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(shape.concurrency)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    closed_loop(label, vec![client], shape, call).await
}

/// The empty handler: an axum `POST /wechat` that reads the body and answers `success`,
/// served by `axum::serve` as the gateway is.
pub struct EmptyHandler {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl EmptyHandler {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the empty handler's port")?;
        let addr = listener
            .local_addr()
            .context("the empty handler's address")?;
        let app = Router::new().route("/wechat", post(|_body: Bytes| async { "success" }));
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .await
        });
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    /// The same pushes (sealed, signed) against the empty handler.
    pub async fn load(&self, openids: &[String], text: &str, shape: Shape) -> anyhow::Result<Load> {
        let pusher = Pusher::new(self.addr, text)?;
        let openids: Arc<Vec<String>> = Arc::new(openids.to_vec());
        drive("empty axum handler", shape, move |client, worker| {
            let (url, body) = pusher.push(&openids[worker % openids.len()]);
            async move {
                let response = client.post(&url).body(body).send().await?;
                if !response.status().is_success() {
                    bail!("the empty handler answered {}", response.status());
                }
                response.text().await?;
                Ok(())
            }
        })
        .await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task
            .await
            .context("the empty handler's task panicked")?
            .context("the empty handler's server failed")
    }
}
