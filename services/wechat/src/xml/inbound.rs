//! The messages and events WeChat pushes to the webhook (after decryption, if any).

use super::{Fields, XmlError, cdata};
use sha1::{Digest, Sha1};

/// One push: who sent it, to which account, when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The Official Account's own id (`gh_…`).
    pub to_user: String,
    /// The sender's openid. Personal data: never log it in full.
    pub from_user: String,
    /// Seconds since the epoch, as WeChat stamped it.
    pub create_time: i64,
    /// Present on messages, absent on events.
    pub msg_id: Option<u64>,
    pub kind: InboundKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundKind {
    Text {
        content: String,
    },
    Image {
        pic_url: String,
        media_id: String,
    },
    /// Voice, video, location, link, …: messages the conversation does not read.
    Other {
        msg_type: String,
    },
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Follow; `scene` is a parametric QR code's scene with the `qrscene_` prefix stripped.
    Subscribe { scene: Option<String> },
    /// Unfollow: WeChat requires the account to delete what it holds about the user.
    Unsubscribe,
    /// A menu button of type click; `key` is the button's EventKey.
    Click { key: String },
    /// A menu button that opens a page; `url` is its EventKey.
    View { url: String },
    /// An already-following user scanned a parametric QR code.
    Scan { key: String },
    /// Any other event (TEMPLATESENDJOBFINISH, LOCATION, …), by its name.
    Other { name: String },
}

impl Event {
    /// The event's name as WeChat writes it.
    pub fn name(&self) -> &str {
        match self {
            Event::Subscribe { .. } => "subscribe",
            Event::Unsubscribe => "unsubscribe",
            Event::Click { .. } => "CLICK",
            Event::View { .. } => "VIEW",
            Event::Scan { .. } => "SCAN",
            Event::Other { name } => name,
        }
    }

    /// The EventKey that tells two events of one name apart, where there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Event::Subscribe { scene } => scene.as_deref(),
            Event::Click { key } | Event::Scan { key } => Some(key),
            Event::View { url } => Some(url),
            Event::Unsubscribe | Event::Other { .. } => None,
        }
    }
}

impl Inbound {
    /// Parses a push body (plain mode, compat mode, or a decrypted safe-mode message).
    pub fn parse(body: &[u8]) -> Result<Inbound, XmlError> {
        Self::from_fields(&Fields::parse(body)?)
    }

    pub fn from_fields(f: &Fields) -> Result<Inbound, XmlError> {
        let to_user = f.require("ToUserName")?.to_owned();
        let from_user = f.require("FromUserName")?.to_owned();
        let create_time = f
            .require("CreateTime")?
            .trim()
            .parse::<i64>()
            .map_err(|_| XmlError::Invalid("CreateTime"))?;
        let msg_id = match f.get("MsgId") {
            Some(id) => Some(
                id.trim()
                    .parse::<u64>()
                    .map_err(|_| XmlError::Invalid("MsgId"))?,
            ),
            None => None,
        };
        let msg_type = f.require("MsgType")?;
        let kind = if msg_type.eq_ignore_ascii_case("text") {
            InboundKind::Text {
                content: f.require("Content")?.to_owned(),
            }
        } else if msg_type.eq_ignore_ascii_case("image") {
            InboundKind::Image {
                pic_url: f.get("PicUrl").unwrap_or_default().to_owned(),
                media_id: f.require("MediaId")?.to_owned(),
            }
        } else if msg_type.eq_ignore_ascii_case("event") {
            InboundKind::Event(parse_event(f)?)
        } else {
            InboundKind::Other {
                msg_type: msg_type.to_owned(),
            }
        };
        Ok(Inbound {
            to_user,
            from_user,
            create_time,
            msg_id,
            kind,
        })
    }

    /// The key WeChat's retries of this push share: the MsgId for messages; for events
    /// FromUserName + CreateTime + Event (the event name too, as two events of one user can
    /// share a second), and the EventKey where there is one: two menu buttons tapped within
    /// one second are two pushes, while a retry repeats the EventKey. Hashed so the openid
    /// does not appear in a cache key.
    pub fn dedupe_key(&self) -> String {
        if let Some(id) = self.msg_id {
            return format!("m:{id}");
        }
        let (event, event_key) = match &self.kind {
            InboundKind::Event(e) => (e.name(), e.key()),
            InboundKind::Text { .. } => ("text", None),
            InboundKind::Image { .. } => ("image", None),
            InboundKind::Other { msg_type } => (msg_type.as_str(), None),
        };
        let mut h = Sha1::new();
        h.update(self.from_user.as_bytes());
        h.update(b"\n");
        h.update(self.create_time.to_string().as_bytes());
        h.update(b"\n");
        h.update(event.as_bytes());
        if let Some(event_key) = event_key {
            h.update(b"\n");
            h.update(event_key.as_bytes());
        }
        format!("e:{}", hex::encode(h.finalize()))
    }

    /// Writes the push as WeChat does (the local WeChat sends these).
    pub fn to_xml(&self) -> String {
        let mut x = format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime>",
            cdata(&self.to_user),
            cdata(&self.from_user),
            self.create_time
        );
        match &self.kind {
            InboundKind::Text { content } => {
                x.push_str("<MsgType><![CDATA[text]]></MsgType><Content>");
                x.push_str(&cdata(content));
                x.push_str("</Content>");
            }
            InboundKind::Image { pic_url, media_id } => {
                x.push_str("<MsgType><![CDATA[image]]></MsgType><PicUrl>");
                x.push_str(&cdata(pic_url));
                x.push_str("</PicUrl><MediaId>");
                x.push_str(&cdata(media_id));
                x.push_str("</MediaId>");
            }
            InboundKind::Other { msg_type } => {
                x.push_str("<MsgType>");
                x.push_str(&cdata(msg_type));
                x.push_str("</MsgType>");
            }
            InboundKind::Event(e) => {
                x.push_str("<MsgType><![CDATA[event]]></MsgType><Event>");
                x.push_str(&cdata(e.name()));
                x.push_str("</Event>");
                let key = match e {
                    Event::Subscribe { scene: Some(s) } => Some(format!("qrscene_{s}")),
                    Event::Click { key } | Event::Scan { key } => Some(key.clone()),
                    Event::View { url } => Some(url.clone()),
                    _ => None,
                };
                if let Some(k) = key {
                    x.push_str("<EventKey>");
                    x.push_str(&cdata(&k));
                    x.push_str("</EventKey>");
                }
            }
        }
        if let Some(id) = self.msg_id {
            x.push_str(&format!("<MsgId>{id}</MsgId>"));
        }
        x.push_str("</xml>");
        x
    }
}

fn parse_event(f: &Fields) -> Result<Event, XmlError> {
    let name = f.require("Event")?;
    let key = || f.get("EventKey").unwrap_or_default().to_owned();
    Ok(if name.eq_ignore_ascii_case("subscribe") {
        // wechatpy's rule: a follow through a parametric QR code carries qrscene_<scene>.
        let scene = f
            .get("EventKey")
            .and_then(|k| k.strip_prefix("qrscene_"))
            .map(str::to_owned);
        Event::Subscribe { scene }
    } else if name.eq_ignore_ascii_case("unsubscribe") {
        Event::Unsubscribe
    } else if name.eq_ignore_ascii_case("click") {
        Event::Click { key: key() }
    } else if name.eq_ignore_ascii_case("view") {
        Event::View { url: key() }
    } else if name.eq_ignore_ascii_case("scan") {
        Event::Scan { key: key() }
    } else {
        Event::Other {
            name: name.to_owned(),
        }
    })
}
