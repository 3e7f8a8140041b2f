//! The pushing side: a citizen's message or event, signed and (in
//! compatible and safe mode) encrypted exactly as WeChat sends it to the
//! webhook, and the passive reply verified, decrypted and read back.

use std::time::Duration;

use crate::{
    client::{HttpClient, HttpError},
    state::{random_token, unix_now},
    wire::{self, Crypt},
    xml::{cdata, leaves},
};

/// The Official Account's message encryption mode (消息加解密方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 明文: plaintext XML, `signature` only.
    Plain,
    /// 兼容: plaintext fields and `Encrypt` side by side.
    Compatible,
    /// 安全: only `Encrypt`; the reply must be encrypted too.
    Safe,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(Mode::Plain),
            "compatible" => Ok(Mode::Compatible),
            "safe" => Ok(Mode::Safe),
            other => Err(format!(
                "unknown mode {other:?}; expected plain, compatible or safe"
            )),
        }
    }
}

/// An event a citizen causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Subscribe,
    Unsubscribe,
    /// A menu button of type `click`, by its key.
    Click(String),
    /// A menu button of type `view`, by its URL.
    View(String),
}

/// What the citizen sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Text(String),
    Image { media_id: String, pic_url: String },
    Event(Event),
}

/// One push, as WeChat identifies it: a retry repeats MsgId and CreateTime.
#[derive(Debug, Clone)]
pub struct Message {
    pub openid: String,
    pub create_time: u64,
    /// Messages carry one; events do not.
    pub msg_id: Option<u64>,
    pub inbound: Inbound,
}

impl Message {
    /// The plaintext XML WeChat would push; `account` is the `gh_…` id.
    pub fn to_xml(&self, account: &str) -> String {
        let head = format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime>",
            cdata(account),
            cdata(&self.openid),
            self.create_time
        );
        let body = match &self.inbound {
            Inbound::Text(text) => format!(
                "<MsgType><![CDATA[text]]></MsgType><Content>{}</Content>",
                cdata(text)
            ),
            Inbound::Image { media_id, pic_url } => format!(
                "<MsgType><![CDATA[image]]></MsgType><PicUrl>{}</PicUrl><MediaId>{}</MediaId>",
                cdata(pic_url),
                cdata(media_id)
            ),
            Inbound::Event(event) => {
                let (name, key) = match event {
                    Event::Subscribe => ("subscribe", None),
                    Event::Unsubscribe => ("unsubscribe", None),
                    Event::Click(key) => ("CLICK", Some(key)),
                    Event::View(url) => ("VIEW", Some(url)),
                };
                let key = key
                    .map(|k| format!("<EventKey>{}</EventKey>", cdata(k)))
                    .unwrap_or_default();
                format!(
                    "<MsgType><![CDATA[event]]></MsgType><Event>{}</Event>{key}",
                    cdata(name)
                )
            }
        };
        let msg_id = self
            .msg_id
            .map(|id| format!("<MsgId>{id}</MsgId>"))
            .unwrap_or_default();
        format!("{head}{body}{msg_id}</xml>")
    }
}

/// The passive reply, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passive {
    /// A 0-byte body: "nothing now".
    Empty,
    /// The literal `success`: "nothing now, maybe later".
    Success,
    Text(String),
    Image {
        media_id: String,
    },
    /// Any other reply type, by MsgType, with its plaintext XML.
    Other {
        msg_type: String,
        xml: String,
    },
}

impl Passive {
    /// The text, for a text reply.
    pub fn text(&self) -> Option<&str> {
        match self {
            Passive::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// What a push came to.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub passive: Passive,
    /// 1, or more when the webhook was too slow and WeChat's retry was asked for.
    pub attempts: u32,
    /// Whether the reply came encrypted.
    pub encrypted: bool,
}

/// Why a push did not produce a usable passive reply.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("webhook unreachable: {0}")]
    Unreachable(String),
    #[error("webhook did not answer within {timeout:?} in {attempts} attempt(s)")]
    NoReply { attempts: u32, timeout: Duration },
    #[error("webhook answered HTTP {status}")]
    Status { status: u16, body: String },
    #[error("passive reply is not valid XML: {0}")]
    Xml(String),
    #[error("passive reply's MsgSignature does not match")]
    BadSignature,
    #[error("passive reply cannot be decrypted: {0}")]
    Decrypt(String),
    #[error("passive reply was encrypted for appid {0:?}")]
    WrongAppid(String),
    #[error("passive reply is plaintext but the account is in safe mode")]
    PlainInSafeMode,
    #[error("passive reply is addressed to {to:?}, not the sender")]
    WrongAddressee { to: String },
}

/// What WeChat's side of the webhook knows.
pub struct Pusher {
    pub token: String,
    pub appid: String,
    /// `gh_…`: the Official Account's original id, ToUserName of every push.
    pub account: String,
    pub mode: Mode,
    pub crypt: Option<Crypt>,
    pub webhook_url: String,
    /// How long WeChat waits for a reply before giving up on an attempt (5 s).
    pub reply_timeout: Duration,
    pub client: HttpClient,
}

/// WeChat tries a message at most this many times.
pub const ATTEMPTS: u32 = 3;

impl Pusher {
    /// Pushes `message`; with `retry`, a reply slower than the timeout makes
    /// WeChat send the same message again, up to [`ATTEMPTS`] in all.
    pub async fn push(&self, message: &Message, retry: bool) -> Result<Delivery, PushError> {
        let xml = message.to_xml(&self.account);
        let attempts = if retry { ATTEMPTS } else { 1 };
        for attempt in 1..=attempts {
            let (url, body) = self.request(&message.openid, &xml);
            match self
                .client
                .post(&url, "text/xml", body.into_bytes(), self.reply_timeout)
                .await
            {
                Ok((status, body)) if status.is_success() => {
                    let mut delivery = self.read_reply(&message.openid, &body)?;
                    delivery.attempts = attempt;
                    return Ok(delivery);
                }
                Ok((status, body)) => {
                    return Err(PushError::Status {
                        status: status.as_u16(),
                        body: String::from_utf8_lossy(&body).chars().take(200).collect(),
                    });
                }
                Err(HttpError::Timeout(_)) => continue,
                Err(HttpError::Failed(e)) => return Err(PushError::Unreachable(e)),
            }
        }
        Err(PushError::NoReply {
            attempts,
            timeout: self.reply_timeout,
        })
    }

    /// The URL (with WeChat's query parameters) and body for one attempt;
    /// each attempt gets its own timestamp and nonce, as WeChat's retries do.
    pub fn request(&self, openid: &str, xml: &str) -> (String, String) {
        let timestamp = unix_now().to_string();
        let nonce = random_nonce();
        let signature = wire::sign(&self.token, &[&timestamp, &nonce]);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("signature", &signature)
            .append_pair("timestamp", &timestamp)
            .append_pair("nonce", &nonce)
            .append_pair("openid", openid);
        let body = match (self.mode, &self.crypt) {
            (Mode::Plain, _) | (_, None) => xml.to_owned(),
            (mode, Some(crypt)) => {
                let encrypt = crypt.encrypt(xml);
                let msg_signature = wire::sign(&self.token, &[&timestamp, &nonce, &encrypt]);
                query
                    .append_pair("encrypt_type", "aes")
                    .append_pair("msg_signature", &msg_signature);
                let envelope = format!("<Encrypt>{}</Encrypt>", cdata(&encrypt));
                if mode == Mode::Safe {
                    format!(
                        "<xml><ToUserName>{}</ToUserName>{envelope}</xml>",
                        cdata(&self.account)
                    )
                } else {
                    // Compatible mode: the plaintext fields, then Encrypt.
                    xml.replacen("</xml>", &format!("{envelope}</xml>"), 1)
                }
            }
        };
        let separator = if self.webhook_url.contains('?') {
            '&'
        } else {
            '?'
        };
        (
            format!("{}{separator}{}", self.webhook_url, query.finish()),
            body,
        )
    }

    /// Verifies, decrypts and reads a passive reply to `openid`.
    pub fn read_reply(&self, openid: &str, body: &[u8]) -> Result<Delivery, PushError> {
        let text = String::from_utf8_lossy(body);
        let plain = |passive| {
            Ok(Delivery {
                passive,
                attempts: 1,
                encrypted: false,
            })
        };
        if body.is_empty() {
            return plain(Passive::Empty);
        }
        if text == "success" {
            return plain(Passive::Success);
        }
        let fields = leaves(&text).map_err(PushError::Xml)?;
        let Some(encrypt) = fields.get("Encrypt") else {
            if self.mode == Mode::Safe {
                return Err(PushError::PlainInSafeMode);
            }
            return Ok(Delivery {
                passive: passive(openid, &fields, &text)?,
                attempts: 1,
                encrypted: false,
            });
        };
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        let expected = wire::sign(&self.token, &[field("TimeStamp"), field("Nonce"), encrypt]);
        if expected != field("MsgSignature") {
            return Err(PushError::BadSignature);
        }
        let crypt = self
            .crypt
            .as_ref()
            .ok_or_else(|| PushError::Decrypt("the sim has no EncodingAESKey".to_owned()))?;
        let (xml, appid) = crypt.decrypt(encrypt).map_err(PushError::Decrypt)?;
        if appid != self.appid {
            return Err(PushError::WrongAppid(appid));
        }
        let inner = leaves(&xml).map_err(PushError::Xml)?;
        Ok(Delivery {
            passive: passive(openid, &inner, &xml)?,
            attempts: 1,
            encrypted: true,
        })
    }
}

fn passive(
    openid: &str,
    fields: &std::collections::HashMap<String, String>,
    xml: &str,
) -> Result<Passive, PushError> {
    let to = fields.get("ToUserName").cloned().unwrap_or_default();
    if to != openid {
        return Err(PushError::WrongAddressee { to });
    }
    let msg_type = fields.get("MsgType").cloned().unwrap_or_default();
    Ok(match msg_type.as_str() {
        "text" => Passive::Text(fields.get("Content").cloned().unwrap_or_default()),
        "image" => Passive::Image {
            media_id: fields.get("Image/MediaId").cloned().unwrap_or_default(),
        },
        _ => Passive::Other {
            msg_type,
            xml: xml.to_owned(),
        },
    })
}

/// WeChat's nonces are decimal digits.
fn random_nonce() -> String {
    rand::random::<u32>().to_string()
}

/// A MsgId like WeChat's (64-bit, unique); random start, then counting.
pub fn first_msg_id() -> u64 {
    6_000_000_000_000_000_000 + u64::from(rand::random::<u32>()) * 1_000
}

/// A media id's stand-in URL for PicUrl.
pub fn pic_url(base: &str, media_id: &str) -> String {
    format!("{base}/sim/pic/{media_id}?r={}", random_token(6))
}
