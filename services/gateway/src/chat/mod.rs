//! The conversation: what a citizen's message or event means, and the
//! reply in plain Chinese, short enough for WeChat.

use huimin_kit::openid::OpenId;

use crate::Gateway;

/// What a citizen sent, as the conversation sees it (the webhook has
/// already checked the signature, decrypted and parsed the XML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text message.
    Text(String),
    /// A photo; its bytes are fetched through the media API by `media_id`.
    Image { media_id: String },
    /// 关注.
    Subscribe,
    /// 取消关注: bindings and subscriptions are removed.
    Unsubscribe,
    /// A menu CLICK with its EventKey.
    Click(String),
    /// Any other message or event type; answered with help.
    Other(String),
}

/// What the conversation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text(String),
    /// Nothing to say (WeChat is answered `success`).
    Nothing,
}

/// Answers one message from `openid`.
pub async fn respond(_gateway: &Gateway, _openid: &OpenId, _inbound: Inbound) -> Reply {
    Reply::Text("您好，回复“帮助”查看可用功能。".to_owned())
}
