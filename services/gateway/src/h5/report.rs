//! 我要举报 (a report with photos, anonymous or real-name) and 举报进度
//! (its status by receipt code).
//!
//! The receipt code is the reporter's only key to the report. It is shown
//! once, in the answer to the POST, with `no-store`; there is deliberately
//! no redirect to a page that could show it again (a URL would keep it in
//! the history, a later view would let anyone with the phone read it).

use askama::Template;
use axum::{
    Form,
    extract::{Multipart, State},
    response::Response,
};
use huimin_proto::whistle::v1::{FollowUpRequest, PhotoUpload, SubmitReportRequest};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{H5, H5Error, render, visit::Visit};
use crate::{limits::Action, usage::Metric};

/// Stricter than whistle's own caps (9 photos of 10 MB): a county phone on
/// a slow network should not try to upload more.
pub const MAX_PHOTOS: usize = 4;
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;
/// The photos plus the text and the form's framing.
pub const MAX_BODY_BYTES: usize = MAX_PHOTOS * MAX_PHOTO_BYTES + 256 * 1024;
const MAX_TEXT_CHARS: usize = 2000;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    title: &'static str,
    csrf: String,
    max_photos: usize,
    max_mb: usize,
    /// (receipt code, report number), on the answer to the submission only.
    receipt: Option<(String, String)>,
}

impl ReportPage {
    fn new(csrf: String) -> Self {
        Self {
            title: "我要举报",
            csrf,
            max_photos: MAX_PHOTOS,
            max_mb: MAX_PHOTO_BYTES / (1024 * 1024),
            receipt: None,
        }
    }
}

pub async fn form(State(h5): State<H5>, visit: Visit) -> Result<Response, H5Error> {
    // A real-name report needs the openid; the page gets it up front so the
    // choice can be made on the form.
    if let Err(redirect) = visit.openid_or_login(&h5, "/h5/report") {
        return Ok(*redirect);
    }
    let page = ReportPage::new(visit.session.csrf.clone());
    Ok(visit.page(&h5, render(&page)?))
}

/// JPEG or PNG by their first bytes; the declared type and name are the
/// sender's word and not believed.
fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A])
}

#[derive(Default)]
struct ReportForm {
    csrf: String,
    text: String,
    anonymous: bool,
    photos: Vec<PhotoUpload>,
}

async fn read_form(mut multipart: Multipart) -> Result<ReportForm, H5Error> {
    let too_big = || {
        H5Error::Invalid(format!(
            "照片太大，每张不能超过 {} MB。",
            MAX_PHOTO_BYTES / (1024 * 1024)
        ))
    };
    let mut form = ReportForm {
        anonymous: true,
        ..ReportForm::default()
    };
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| H5Error::Invalid("表单不完整或照片太大，请重新提交。".to_owned()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(|_| too_big())?;
        match name.as_str() {
            "csrf" => form.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "text" => form.text = String::from_utf8_lossy(&bytes).trim().to_owned(),
            "anonymous" => form.anonymous = bytes.as_ref() != b"0",
            // An empty file input still sends a part, with no bytes.
            "photos" if bytes.is_empty() => {}
            "photos" => {
                if form.photos.len() == MAX_PHOTOS {
                    return Err(H5Error::Invalid(format!("照片最多 {MAX_PHOTOS} 张。")));
                }
                if bytes.len() > MAX_PHOTO_BYTES {
                    return Err(too_big());
                }
                if !is_image(&bytes) {
                    return Err(H5Error::Invalid("照片只能是 JPG 或 PNG 图片。".to_owned()));
                }
                form.photos.push(PhotoUpload {
                    file_name,
                    data: bytes.to_vec(),
                });
            }
            _ => {}
        }
    }
    Ok(form)
}

pub async fn submit(
    State(h5): State<H5>,
    visit: Visit,
    multipart: Multipart,
) -> Result<Response, H5Error> {
    let form = read_form(multipart).await?;
    visit.check_csrf(&form.csrf)?;
    if form.text.is_empty() {
        return Err(H5Error::Invalid("请填写举报内容。".to_owned()));
    }
    if form.text.chars().count() > MAX_TEXT_CHARS {
        return Err(H5Error::Invalid(format!(
            "举报内容不能超过 {MAX_TEXT_CHARS} 字。"
        )));
    }
    visit.limit(&h5, Action::Report).await?;
    // Anonymous: the openid is not sent at all, so no later bug in whistle
    // could keep it.
    let openid = if form.anonymous {
        String::new()
    } else {
        visit
            .session
            .openid()
            .ok_or(H5Error::OAuth)?
            .as_str()
            .to_owned()
    };
    let request = SubmitReportRequest {
        text: form.text,
        photos: form.photos,
        anonymous: form.anonymous,
        openid,
        ..Default::default()
    };
    let answer = h5
        .gateway
        .whistle
        .call(|mut whistle| {
            let request = request.clone();
            async move { whistle.submit_report(request).await }
        })
        .await
        .map_err(|status| H5Error::from_status("whistle", &status))?
        .into_inner();
    // The form is not counted as a report started: the chat counts a
    // draft, and a page opened is not yet a report.
    h5.gateway.usage.count(Metric::ReportsSubmitted, 1);
    let mut page = ReportPage::new(visit.session.csrf.clone());
    page.receipt = Some((answer.receipt_code, answer.report_number));
    Ok(visit.page(&h5, render(&page)?))
}

struct ProgressView {
    number: String,
    received_on: String,
    status: String,
    replies: Vec<String>,
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressPage {
    title: &'static str,
    csrf: String,
    found: Option<ProgressView>,
}

pub async fn progress_form(State(h5): State<H5>, visit: Visit) -> Result<Response, H5Error> {
    let page = ProgressPage {
        title: "举报进度",
        csrf: visit.session.csrf.clone(),
        found: None,
    };
    Ok(visit.page(&h5, render(&page)?))
}

#[derive(Deserialize)]
pub struct ProgressForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    receipt: String,
}

/// By POST: a receipt code in a URL would sit in the browser's history and
/// in every proxy's log.
pub async fn progress(
    State(h5): State<H5>,
    visit: Visit,
    Form(form): Form<ProgressForm>,
) -> Result<Response, H5Error> {
    visit.check_csrf(&form.csrf)?;
    visit.limit(&h5, Action::ReceiptGuess).await?;
    let request = FollowUpRequest {
        receipt_code: form.receipt.trim().to_owned(),
        client_key: client_key(&visit),
    };
    let answer = h5
        .gateway
        .whistle
        .call(|mut whistle| {
            let request = request.clone();
            async move { whistle.follow_up(request).await }
        })
        .await
        .map_err(|status| H5Error::from_status("whistle", &status))?
        .into_inner();
    let page = ProgressPage {
        title: "举报进度",
        csrf: visit.session.csrf.clone(),
        found: Some(ProgressView {
            number: answer.report_number,
            received_on: answer.received_on,
            status: answer.status_label,
            replies: answer.replies.into_iter().map(|r| r.text).collect(),
        }),
    };
    Ok(visit.page(&h5, render(&page)?))
}

/// Whistle throttles guesses per asker; it gets a hash, not the IP or openid.
fn client_key(visit: &Visit) -> String {
    let mut hash = Sha256::new();
    match (visit.session.openid(), visit.ip) {
        (Some(openid), _) => hash.update(openid.as_str().as_bytes()),
        (None, Some(ip)) => hash.update(ip.to_string().as_bytes()),
        (None, None) => hash.update(b"unknown"),
    }
    hex::encode(&hash.finalize()[..16])
}
