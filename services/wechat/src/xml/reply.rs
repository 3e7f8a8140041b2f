//! Passive replies, and the encrypted envelopes of safe and compat mode in both directions.

use super::{Fields, XmlError};
use crate::crypt::MsgCrypt;
use crate::signature;

/// The body that tells WeChat "no reply, do not retry" (an empty body works too). Anything
/// else that is not a valid reply makes WeChat show the user "该公众号暂时无法提供服务".
pub const SUCCESS: &str = "success";

/// `s` as CDATA; a `]]>` inside is split across two sections so it cannot close the first.
pub fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// A passive text reply. `to_user` is the inbound FromUserName (the openid), `from_user` the
/// inbound ToUserName (the account): the reply swaps them.
pub fn text_reply(to_user: &str, from_user: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(to_user),
        cdata(from_user),
        cdata(content)
    )
}

/// The safe-mode reply envelope around an already-sealed `encrypt`.
pub fn encrypted_reply(encrypt: &str, msg_signature: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature><TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
        cdata(encrypt),
        cdata(msg_signature),
        super::escape_text(timestamp),
        cdata(nonce)
    )
}

/// The envelope of an encrypted push: `<xml><ToUserName/><Encrypt/></xml>` (compat mode
/// carries the plaintext fields beside it; they are ignored here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub to_user: Option<String>,
    pub encrypt: String,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Envelope, XmlError> {
        let f = Fields::parse(body)?;
        Ok(Envelope {
            to_user: f.get("ToUserName").map(str::to_owned),
            encrypt: f.require("Encrypt")?.to_owned(),
        })
    }

    /// Writes a safe-mode push body (the local WeChat sends these).
    pub fn to_xml(&self) -> String {
        let to = self.to_user.as_deref().map(cdata).unwrap_or_default();
        format!(
            "<xml><ToUserName>{to}</ToUserName><Encrypt>{}</Encrypt></xml>",
            cdata(&self.encrypt)
        )
    }
}

/// A safe-mode reply as read back by the side that receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedReply {
    pub encrypt: String,
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
}

impl EncryptedReply {
    /// Seals `xml` with `crypt` and signs it with `token`, as a reply to a push that came
    /// with `timestamp` and `nonce`.
    pub fn seal(crypt: &MsgCrypt, token: &str, xml: &str, timestamp: &str, nonce: &str) -> Self {
        let encrypt = crypt.encrypt_random(xml);
        let msg_signature = signature::sign(token, &[timestamp, nonce, &encrypt]);
        EncryptedReply {
            encrypt,
            msg_signature,
            timestamp: timestamp.to_owned(),
            nonce: nonce.to_owned(),
        }
    }

    pub fn to_xml(&self) -> String {
        encrypted_reply(
            &self.encrypt,
            &self.msg_signature,
            &self.timestamp,
            &self.nonce,
        )
    }

    pub fn parse(body: &[u8]) -> Result<Self, XmlError> {
        let f = Fields::parse(body)?;
        Ok(EncryptedReply {
            encrypt: f.require("Encrypt")?.to_owned(),
            msg_signature: f.require("MsgSignature")?.to_owned(),
            timestamp: f.require("TimeStamp")?.to_owned(),
            nonce: f.require("Nonce")?.to_owned(),
        })
    }

    /// Whether the signature covers this envelope under `token`.
    pub fn verify(&self, token: &str) -> bool {
        signature::verify(
            &self.msg_signature,
            token,
            &[&self.timestamp, &self.nonce, &self.encrypt],
        )
    }
}

/// A passive reply as read back by the side that receives it (the local WeChat, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text {
        to_user: String,
        from_user: String,
        create_time: i64,
        content: String,
    },
    /// A reply of another MsgType (image, news, …).
    Other { msg_type: String },
}

impl Reply {
    pub fn parse(body: &[u8]) -> Result<Reply, XmlError> {
        let f = Fields::parse(body)?;
        let msg_type = f.require("MsgType")?;
        if !msg_type.eq_ignore_ascii_case("text") {
            return Ok(Reply::Other {
                msg_type: msg_type.to_owned(),
            });
        }
        Ok(Reply::Text {
            to_user: f.require("ToUserName")?.to_owned(),
            from_user: f.require("FromUserName")?.to_owned(),
            create_time: f
                .require("CreateTime")?
                .trim()
                .parse()
                .map_err(|_| XmlError::Invalid("CreateTime"))?,
            content: f.require("Content")?.to_owned(),
        })
    }
}
