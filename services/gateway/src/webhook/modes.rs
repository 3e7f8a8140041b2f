//! Plain, compatible and safe modes: opening a request and sealing its reply in the same mode.
//!
//! WeChat marks an encrypted request with `encrypt_type=aes` and `msg_signature` in the URL;
//! compatible mode also carries the plaintext fields beside `Encrypt`, safe mode only
//! `Encrypt`. Both are opened from `Encrypt` (the plaintext copy of compatible mode is not
//! covered by `msg_signature`, so it is never trusted) and both are answered encrypted, which
//! compatible mode accepts and safe mode requires.

use huimin_wechat::{
    AesKey, CryptError, Inbound, MsgCrypt, signature,
    xml::{EncryptedReply, Fields},
};
use secrecy::ExposeSecret as _;

use super::{refusal::Refusal, verify::Params};
use crate::config::GatewayConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Compat,
    Safe,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Compat => "compat",
            Mode::Safe => "safe",
        }
    }
}

/// Which configured key opened a message (the reply is sealed with the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    Current,
    Previous,
}

/// The EncodingAESKey and, during a rotation, the one before it.
pub struct KeyRing {
    current: Option<MsgCrypt>,
    previous: Option<MsgCrypt>,
}

impl KeyRing {
    /// Parses both keys now, so a mistyped key stops the gateway at start, not at the first
    /// encrypted message.
    pub fn from_config(config: &GatewayConfig) -> anyhow::Result<Self> {
        let parse = |name: &str, key: &Option<secrecy::SecretString>| {
            key.as_ref()
                .map(|k| {
                    AesKey::parse(k.expose_secret())
                        .map(|key| MsgCrypt::new(key, &config.appid))
                        .map_err(|e| anyhow::anyhow!("{name}: {e}"))
                })
                .transpose()
        };
        Ok(Self {
            current: parse("HUIMIN_WECHAT_AES_KEY", &config.aes_key)?,
            previous: parse("HUIMIN_WECHAT_AES_KEY_PREVIOUS", &config.aes_key_previous)?,
        })
    }

    fn get(&self, which: KeyUsed) -> Option<&MsgCrypt> {
        match which {
            KeyUsed::Current => self.current.as_ref(),
            KeyUsed::Previous => self.previous.as_ref(),
        }
    }

    /// Opens `encrypt` with the current key, then the previous one; the appid inside must be
    /// ours. A wrong key fails the strict padding check almost always; when it does not, the
    /// appid check catches it, so a rotation never mistakes one key for the other.
    fn open(&self, encrypt: &str) -> Result<(String, KeyUsed), Refusal> {
        let mut refusal = Refusal::NoKey;
        for which in [KeyUsed::Current, KeyUsed::Previous] {
            let Some(crypt) = self.get(which) else {
                continue;
            };
            match crypt.decrypt_for_app(encrypt) {
                Ok(xml) => return Ok((xml, which)),
                Err(CryptError::AppIdMismatch) => refusal = Refusal::AppId,
                // An appid mismatch under one key says more than a padding error under the other.
                Err(e) if !matches!(refusal, Refusal::AppId) => refusal = Refusal::Ciphertext(e),
                Err(_) => {}
            }
        }
        Err(refusal)
    }
}

/// A request opened: its mode, its message, and the key that opened it.
pub struct Opened {
    pub mode: Mode,
    pub inbound: Inbound,
    pub key: Option<KeyUsed>,
}

/// Opens a signed request's body in the mode the URL says.
pub fn open(keys: &KeyRing, token: &str, params: &Params, body: &[u8]) -> Result<Opened, Refusal> {
    if !params.encrypted() {
        let inbound = Inbound::parse(body).map_err(Refusal::Xml)?;
        return Ok(Opened {
            mode: Mode::Plain,
            inbound,
            key: None,
        });
    }
    let fields = Fields::parse(body).map_err(Refusal::Xml)?;
    let encrypt = fields.require("Encrypt").map_err(Refusal::Xml)?.to_owned();
    let mode = if fields.get("MsgType").is_some() {
        Mode::Compat
    } else {
        Mode::Safe
    };
    let (Some(msg_signature), Some(timestamp), Some(nonce)) =
        (&params.msg_signature, &params.timestamp, &params.nonce)
    else {
        return Err(Refusal::MsgSignature);
    };
    if !signature::verify(msg_signature, token, &[timestamp, nonce, &encrypt]) {
        return Err(Refusal::MsgSignature);
    }
    let (xml, key) = keys.open(&encrypt)?;
    let inbound = Inbound::parse(xml.as_bytes()).map_err(Refusal::Xml)?;
    Ok(Opened {
        mode,
        inbound,
        key: Some(key),
    })
}

/// The reply body for `xml` in the request's mode, sealed with the key that opened it.
pub fn seal(keys: &KeyRing, token: &str, opened: &Opened, xml: String) -> String {
    let crypt = opened.key.and_then(|which| keys.get(which));
    match crypt {
        None => xml,
        Some(crypt) => {
            let timestamp = chrono::Utc::now().timestamp().to_string();
            let nonce = rand::random::<u32>().to_string();
            EncryptedReply::seal(crypt, token, &xml, &timestamp, &nonce).to_xml()
        }
    }
}
