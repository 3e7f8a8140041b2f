//! The protocol's crypto, from the huimin-wechat crate the gateway uses too
//! (one implementation, checked against WeChat's public vectors there).

use huimin_wechat::crypt::{AesKey, MsgCrypt};

/// WeChat's SHA-1 signature over the sorted `token` and `parts`.
pub fn sign(token: &str, parts: &[&str]) -> String {
    huimin_wechat::signature::sign(token, parts)
}

/// One Official Account's WXBizMsgCrypt.
pub struct Crypt(MsgCrypt);

impl Crypt {
    /// `encoding_aes_key` is the 43-character EncodingAESKey.
    pub fn new(encoding_aes_key: &str, appid: &str) -> Result<Self, String> {
        let key = AesKey::parse(encoding_aes_key).map_err(|e| format!("EncodingAESKey: {e}"))?;
        Ok(Self(MsgCrypt::new(key, appid)))
    }

    pub fn encrypt(&self, xml: &str) -> String {
        self.0.encrypt_random(xml)
    }

    /// The plaintext XML and the appid it was sealed for.
    pub fn decrypt(&self, encrypt: &str) -> Result<(String, String), String> {
        let opened = self.0.decrypt(encrypt).map_err(|e| e.to_string())?;
        Ok((opened.xml, opened.appid))
    }
}
