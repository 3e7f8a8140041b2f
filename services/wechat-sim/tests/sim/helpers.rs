//! A recording webhook that checks what the sim pushes the way the gateway
//! must (signature, msg_signature, decryption, appid), and answers with a
//! configurable passive reply.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::IntoResponse,
    routing::post,
};
use huimin_wechat::{
    crypt::{AesKey, MsgCrypt},
    signature,
    xml::{EncryptedReply, Fields},
};
use huimin_wechat_sim::{Mode, Sim, SimConfig, WeChatSim, client::HttpClient};

pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const OPENID: &str = "o-test-citizen";

/// What the webhook answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A text reply echoing the content ("收到：…").
    Echo,
    Success,
    Empty,
    /// An encrypted reply with a wrong MsgSignature.
    BadSignature,
}

/// One request as the webhook saw it, after its checks.
#[derive(Debug, Clone)]
pub struct Seen {
    pub query: HashMap<String, String>,
    pub raw_body: String,
    /// The plaintext message XML's fields (decrypted in aes mode).
    pub fields: Vec<(String, String)>,
    /// Whether every signature checked out.
    pub signatures_ok: bool,
}

impl Seen {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Webhook {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

struct Hook {
    token: String,
    crypt: MsgCrypt,
    answer: Answer,
    /// The first N requests are answered only after this delay.
    slow: Option<(usize, Duration)>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub async fn webhook(answer: Answer, slow: Option<(usize, Duration)>) -> Webhook {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::new(Hook {
        token: "huimindev".to_owned(),
        crypt: MsgCrypt::new(
            AesKey::parse(AES_KEY).expect("the test key is valid"),
            "wxhuimindev00000",
        ),
        answer,
        slow,
        seen: seen.clone(),
    });
    let app = Router::new()
        .route("/wechat", post(receive))
        .with_state(hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test webhook");
    let url = format!(
        "http://{}/wechat",
        listener.local_addr().expect("its address")
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the test webhook serves");
    });
    Webhook { url, seen }
}

async fn receive(
    State(hook): State<Arc<Hook>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> impl IntoResponse {
    let q = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let mut signatures_ok =
        signature::verify(q("signature"), &hook.token, &[q("timestamp"), q("nonce")]);
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let outer = Fields::parse(&body).expect("the sim pushes well-formed xml");
    let aes = q("encrypt_type") == "aes";
    let plaintext = match outer.get("Encrypt") {
        Some(encrypt) if aes => {
            signatures_ok &= signature::verify(
                q("msg_signature"),
                &hook.token,
                &[q("timestamp"), q("nonce"), encrypt],
            );
            hook.crypt
                .decrypt_for_app(encrypt)
                .expect("the sim encrypts for the appid")
        }
        _ => raw_body.clone(),
    };
    let fields = Fields::parse(plaintext.as_bytes()).expect("the message is well-formed xml");
    let index = {
        let mut seen = hook.seen.lock().expect("not poisoned");
        seen.push(Seen {
            query: query.clone(),
            raw_body,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            signatures_ok,
        });
        seen.len()
    };
    if let Some((first, delay)) = hook.slow
        && index <= first
    {
        tokio::time::sleep(delay).await;
    }
    let from = fields.get("FromUserName").unwrap_or_default().to_owned();
    let to = fields.get("ToUserName").unwrap_or_default().to_owned();
    let content = format!("收到：{}", fields.get("Content").unwrap_or("事件"));
    let reply = huimin_wechat::xml::text_reply(&from, &to, 1_700_000_000, &content);
    let body = match hook.answer {
        Answer::Success => "success".to_owned(),
        Answer::Empty => String::new(),
        Answer::Echo if !aes => reply,
        Answer::Echo | Answer::BadSignature => {
            let mut sealed =
                EncryptedReply::seal(&hook.crypt, &hook.token, &reply, "1700000000", "42");
            if hook.answer == Answer::BadSignature {
                sealed.msg_signature = "0".repeat(40);
            }
            sealed.to_xml()
        }
    };
    (StatusCode::OK, body)
}

/// A sim in `mode` pushing to `webhook_url`, answering replies in 300 ms.
pub async fn sim(mode: Mode, webhook_url: &str) -> Sim {
    let mut config = SimConfig::dev(webhook_url);
    config.mode = mode;
    config.aes_key = Some(AES_KEY.to_owned());
    config.reply_timeout = Duration::from_millis(300);
    WeChatSim::start(config).await.expect("the sim starts")
}

pub fn http() -> HttpClient {
    HttpClient::default()
}

pub const T: Duration = Duration::from_secs(5);

pub async fn get_json(url: &str) -> serde_json::Value {
    let answer = http().get(url, T).await.expect("the sim answers");
    serde_json::from_slice(&answer.body).expect("json")
}

pub async fn post_json(url: &str, body: serde_json::Value) -> serde_json::Value {
    let (_, body) = http()
        .post(url, "application/json", body.to_string().into_bytes(), T)
        .await
        .expect("the sim answers");
    serde_json::from_slice(&body).expect("json")
}

/// An access_token from the sim's `cgi-bin/token`.
pub async fn token(sim: &Sim) -> String {
    let body = get_json(&format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid=wxhuimindev00000&secret=huimin-dev-secret",
        sim.api_base()
    ))
    .await;
    body["access_token"]
        .as_str()
        .expect("a token for the right credentials")
        .to_owned()
}
