//! The conversation: what a citizen's message or event means, and the
//! reply in plain Chinese, short enough for WeChat.
//!
//! Split by what a citizen does: [`account`] (follow, bind, 查询),
//! [`public`] (政策, 项目, 公示), [`report`] (举报, 进度). State that spans
//! messages (a report draft, a numbered choice) is kept in Redis per openid
//! with a TTL, so any replica can answer the next message.

pub mod account;
pub mod commands;
pub mod format;
pub mod public;
pub mod report;
pub mod texts;

use huimin_kit::openid::OpenId;

use crate::{Gateway, limits::Caller, usage::Metric};
use commands::Command;

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

impl Reply {
    fn text(text: impl Into<String>) -> Self {
        Reply::Text(text.into())
    }
}

/// The menu's CLICK keys (services/gateway/menu.json), each the command it stands for.
pub fn click_command(key: &str) -> Option<&'static str> {
    Some(match key {
        "QUERY" => "查询",
        "POLICY" => "政策",
        "PROJECTS" => "项目",
        "DISCLOSURE" => "公示",
        "REPORT" => "举报",
        "PROGRESS" => "进度",
        "BIND" => "绑定",
        "HELP" => "帮助",
        _ => return None,
    })
}

/// Answers one message from `openid`.
pub async fn respond(gateway: &Gateway, openid: &OpenId, inbound: Inbound) -> Reply {
    // Leaving is not a visit: no hash of someone who just asked to be forgotten.
    if inbound != Inbound::Unsubscribe {
        gateway.usage.visit(openid, Metric::ChatMessages);
    }
    match inbound {
        Inbound::Subscribe => account::follow(gateway),
        Inbound::Unsubscribe => account::unfollow(gateway, openid).await,
        Inbound::Image { media_id } => report::attach_image(gateway, openid, media_id).await,
        Inbound::Click(key) => match click_command(&key) {
            Some(text) => command(gateway, openid, commands::parse(text)).await,
            None => Reply::text(texts::HELP),
        },
        Inbound::Text(text) => {
            let parsed = commands::parse(&text);
            // While a report is being written, what is not a report command is its text.
            if let Command::Unknown(text) = parsed {
                return match report::attach_text(gateway, openid, &text).await {
                    Some(reply) => reply,
                    None => Reply::text(texts::HELP),
                };
            }
            command(gateway, openid, parsed).await
        }
        Inbound::Other(_) => Reply::text(texts::HELP),
    }
}

async fn command(gateway: &Gateway, openid: &OpenId, command: Command) -> Reply {
    let caller = Caller {
        openid: Some(openid.clone()),
        ip: None,
    };
    match command {
        Command::Help | Command::Unknown(_) => Reply::text(texts::HELP),
        Command::Query { month, program } => {
            account::query(gateway, openid, month, program.as_deref()).await
        }
        Command::BindUsage => Reply::text(texts::BIND_USAGE),
        Command::Bind { id_number, name } => {
            account::bind(gateway, &caller, openid, &id_number, &name).await
        }
        Command::Unbind => account::unbind(gateway, openid).await,
        Command::Policy(program) => public::policies(gateway, program.as_deref()).await,
        Command::Projects => public::projects(gateway, openid).await,
        Command::Disclosure(None) => Reply::text(texts::DISCLOSURE_ASK),
        Command::Disclosure(Some(name)) => {
            public::disclosure_by_name(gateway, &caller, openid, &name).await
        }
        Command::Pick(n) => public::pick(gateway, &caller, openid, n).await,
        Command::Subscribe => Reply::text(texts::SUBSCRIBE_SOON),
        Command::Unsubscribe => Reply::text(texts::UNSUBSCRIBE_SOON),
        Command::Report => report::start(gateway, &caller, openid).await,
        Command::Submit => report::ask_name(gateway, openid).await,
        Command::Cancel => report::cancel(gateway, openid).await,
        Command::Anonymous => report::submit(gateway, openid, true).await,
        Command::RealName => report::submit(gateway, openid, false).await,
        Command::Progress(None) => Reply::text(texts::PROGRESS_ASK),
        Command::Progress(Some(code)) => report::progress(gateway, &caller, openid, &code).await,
    }
}

/// A service failed: logged by its code only (never the message, which may
/// echo input), the citizen gets an apology.
fn apology(service: &'static str, status: &tonic::Status) -> Reply {
    tracing::warn!(service, code = ?status.code(), "chat: a service call failed");
    Reply::text(texts::APOLOGY)
}

#[cfg(test)]
mod tests {
    /// Every CLICK key of the menu is a command the conversation knows.
    #[test]
    fn every_menu_key_is_known() {
        let menu: serde_json::Value =
            serde_json::from_str(include_str!("../../menu.json")).expect("menu.json is JSON");
        let mut keys = Vec::new();
        for button in menu["button"].as_array().expect("buttons") {
            for sub in button["sub_button"].as_array().expect("sub buttons") {
                keys.push(sub["key"].as_str().expect("key").to_owned());
            }
        }
        assert!(keys.len() >= 8);
        for key in keys {
            assert!(super::click_command(&key).is_some(), "{key}");
        }
    }
}
