//! 举报 in chat: a draft per openid in Redis (texts and photos attach until
//! 提交), then 匿名 or 实名, then SubmitReport; and 进度 by receipt code.

use std::time::Duration;

use huimin_kit::openid::OpenId;
use huimin_proto::whistle::v1 as wpb;
use serde::{Deserialize, Serialize};
use tonic::Code;

use super::{Reply, apology, format, texts};
use crate::{
    Gateway,
    limits::{Action, Caller},
    usage::Metric,
};

/// A draft left alone this long is gone (the citizen is told so by 提交 finding none).
const DRAFT_TTL: Duration = Duration::from_secs(30 * 60);
const MAX_PHOTOS: usize = 9;
/// Bytes of text a draft keeps; whistle's own limit is higher.
const MAX_TEXT: usize = 6000;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Draft {
    texts: Vec<String>,
    media: Vec<String>,
}

impl Draft {
    fn is_empty(&self) -> bool {
        self.texts.is_empty() && self.media.is_empty()
    }
    fn text_len(&self) -> usize {
        self.texts.iter().map(String::len).sum()
    }
}

fn key(openid: &OpenId) -> String {
    format!("gateway:report-draft:{}", openid.as_str())
}

async fn load(gateway: &Gateway, openid: &OpenId) -> Option<Draft> {
    gateway.cache.get_json(&key(openid)).await
}

async fn save(gateway: &Gateway, openid: &OpenId, draft: &Draft) {
    gateway.cache.set_json(&key(openid), draft, DRAFT_TTL).await;
}

/// Removes the draft. `invalidate` prefixes keys itself, as `get_json` and `set_json` do.
pub async fn drop_draft(gateway: &Gateway, openid: &OpenId) {
    gateway.cache.invalidate(&[key(openid)]).await;
}

pub async fn start(gateway: &Gateway, caller: &Caller, openid: &OpenId) -> Reply {
    if let Err(limited) = gateway.limits.check(Action::Report, caller).await {
        return Reply::Text(limited.message_zh);
    }
    gateway.usage.count(Metric::ReportsStarted, 1);
    save(gateway, openid, &Draft::default()).await;
    Reply::text(texts::REPORT_STARTED)
}

/// A text while a draft is open; `None` when there is none.
pub async fn attach_text(gateway: &Gateway, openid: &OpenId, text: &str) -> Option<Reply> {
    let mut draft = load(gateway, openid).await?;
    let room = MAX_TEXT.saturating_sub(draft.text_len());
    if room == 0 {
        return Some(Reply::text("内容已经很多了，请回复“提交”。"));
    }
    draft.texts.push(format::cut(text, room).to_owned());
    save(gateway, openid, &draft).await;
    Some(Reply::text(texts::REPORT_ATTACHED))
}

pub async fn attach_image(gateway: &Gateway, openid: &OpenId, media_id: String) -> Reply {
    let Some(mut draft) = load(gateway, openid).await else {
        return Reply::text(texts::PHOTO_OUTSIDE_REPORT);
    };
    if draft.media.len() >= MAX_PHOTOS {
        return Reply::Text(format!("最多{MAX_PHOTOS}张照片，请回复“提交”。"));
    }
    draft.media.push(media_id);
    save(gateway, openid, &draft).await;
    Reply::Text(format!(
        "已收到第{}张照片。说完后回复“提交”。",
        draft.media.len()
    ))
}

pub async fn ask_name(gateway: &Gateway, openid: &OpenId) -> Reply {
    match load(gateway, openid).await {
        None => Reply::text(texts::REPORT_NONE),
        Some(draft) if draft.is_empty() => Reply::text(texts::REPORT_EMPTY),
        Some(_) => Reply::text(texts::REPORT_ASK_NAME),
    }
}

pub async fn cancel(gateway: &Gateway, openid: &OpenId) -> Reply {
    if load(gateway, openid).await.is_none() {
        return Reply::text(texts::REPORT_NONE);
    }
    drop_draft(gateway, openid).await;
    Reply::text(texts::REPORT_CANCELLED)
}

pub async fn submit(gateway: &Gateway, openid: &OpenId, anonymous: bool) -> Reply {
    let Some(draft) = load(gateway, openid).await else {
        return Reply::text(texts::REPORT_NONE);
    };
    if draft.is_empty() {
        return Reply::text(texts::REPORT_EMPTY);
    }
    let mut photos = Vec::with_capacity(draft.media.len());
    for (i, media_id) in draft.media.iter().enumerate() {
        match gateway.wechat.media(media_id).await {
            Ok(media) => photos.push(wpb::PhotoUpload {
                file_name: format!("photo-{}.{}", i + 1, extension(&media.content_type)),
                data: media.bytes,
            }),
            Err(error) => {
                tracing::warn!(%error, "report: a photo could not be downloaded");
                return Reply::text("照片下载失败，请稍后再回复“匿名”或“实名”提交。");
            }
        }
    }
    let request = wpb::SubmitReportRequest {
        text: draft.texts.join("\n"),
        photos,
        anonymous,
        // An anonymous report carries nothing that could lead back to the sender.
        openid: if anonymous {
            String::new()
        } else {
            openid.as_str().to_owned()
        },
        ..Default::default()
    };
    match gateway
        .whistle
        .call(|mut client| {
            let request = request.clone();
            async move { client.submit_report(request).await }
        })
        .await
    {
        Ok(response) => {
            drop_draft(gateway, openid).await;
            gateway.usage.count(Metric::ReportsSubmitted, 1);
            let response = response.into_inner();
            Reply::Text(format!(
                "已提交，编号{}。\n回执码：{}\n请务必记下回执码，它只显示这一次，丢失无法找回。查进度请回复：进度 回执码",
                response.report_number, response.receipt_code
            ))
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            tracing::info!("report refused by whistle as invalid");
            Reply::text("提交没有成功：内容或照片不符合要求（照片需为JPG或PNG）。请修改后再试。")
        }
        Err(status) => apology("whistle", &status),
    }
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        _ => "jpg",
    }
}

pub async fn progress(gateway: &Gateway, caller: &Caller, openid: &OpenId, code: &str) -> Reply {
    if let Err(limited) = gateway.limits.check(Action::ReceiptGuess, caller).await {
        return Reply::Text(limited.message_zh);
    }
    let request = wpb::FollowUpRequest {
        receipt_code: code.to_owned(),
        client_key: gateway.usage.client_key(openid.as_str()),
    };
    match gateway
        .whistle
        .call(|mut client| {
            let request = request.clone();
            async move { client.follow_up(request).await }
        })
        .await
    {
        Ok(response) => {
            let r = response.into_inner();
            let mut text = format!(
                "编号{}（{}受理）\n状态：{}",
                r.report_number, r.received_on, r.status_label
            );
            for reply in &r.replies {
                text.push_str(&format!("\n答复：{}", reply.text));
            }
            let more = format!("详见：{}/h5/progress", gateway.config.public_url);
            if text.len() > format::MAX_REPLY_BYTES {
                let cut = format::cut(&text, format::MAX_REPLY_BYTES - more.len() - 8);
                text = format!("{cut}……\n{more}");
            }
            Reply::Text(text)
        }
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
            Reply::text(texts::PROGRESS_UNKNOWN)
        }
        Err(status) if status.code() == Code::ResourceExhausted => {
            Reply::text("查询次数过多，请稍后再试。")
        }
        Err(status) => apology("whistle", &status),
    }
}
