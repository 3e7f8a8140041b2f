//! The webhook WeChat calls at `/wechat`: URL verification, signatures,
//! plain/compatible/safe modes, dedupe of retried messages, and the 5 s
//! deadline (a slow answer goes out later as a customer-service message).
//!
//! A POST goes: size cap → URL signature → open in its mode (msg_signature, decrypt with
//! the current or previous key, appid, hardened XML) → dedupe claim → the conversation,
//! bounded by `HUIMIN_WECHAT_REPLY_DEADLINE_MS` → the reply sealed in the request's mode.

mod deadline;
mod dedupe;
mod modes;
mod refusal;
mod verify;

use std::{sync::Arc, time::Instant};

use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    response::{IntoResponse, Response},
    routing::get,
};
use huimin_kit::openid::OpenId;
use huimin_wechat::{Event, Inbound, InboundKind, xml};
use secrecy::ExposeSecret as _;
use tracing::Instrument as _;

use crate::{Gateway, chat};
use dedupe::{Claim, Dedupe, Kept};
use modes::{KeyRing, Opened};
use refusal::Refusal;
use verify::Params;

/// Largest body accepted (413 past it). WeChat's pushes are a few KiB at most.
pub const MAX_BODY: usize = 64 * 1024;

/// Requests by `mode` (plain, compat, safe, verify, unknown) and `outcome`.
const REQUESTS: &str = "webhook_requests_total";
/// Answers that missed the deadline, by `outcome` (sent, failed, nothing).
const LATE: &str = "webhook_late_replies_total";
/// Times the conversation was run for a message: once per message, retries excluded.
const WORK: &str = "webhook_work_runs_total";

fn count(mode: &'static str, outcome: &'static str) {
    metrics::counter!(REQUESTS, "mode" => mode, "outcome" => outcome).increment(1);
}

/// The webhook's state; cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Gateway,
    keys: KeyRing,
    dedupe: Dedupe,
}

impl Webhook {
    pub fn new(gateway: Gateway) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                keys: KeyRing::from_config(&gateway.config)?,
                dedupe: Dedupe::new(gateway.cache.clone()),
                gateway,
            }),
        })
    }

    fn token(&self) -> &str {
        self.inner.gateway.config.wechat_token.expose_secret()
    }
}

pub fn router(gateway: Gateway) -> anyhow::Result<axum::Router> {
    let webhook = Webhook::new(gateway)?;
    Ok(axum::Router::new()
        .route("/wechat", get(verify::url_verification).post(receive))
        .with_state(webhook))
}

/// POST `/wechat`: one push from WeChat.
async fn receive(
    State(webhook): State<Webhook>,
    Query(params): Query<Params>,
    headers: http::HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!(
        "webhook",
        mode = tracing::field::Empty,
        msg_type = tracing::field::Empty,
        openid = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    async move {
        match handle(&webhook, &params, &headers, body, started).await {
            Ok((mode, outcome, response)) => {
                tracing::Span::current().record("outcome", outcome);
                count(mode, outcome);
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "webhook answered"
                );
                response
            }
            Err((mode, refusal)) => {
                tracing::Span::current().record("outcome", refusal.outcome());
                count(mode, refusal.outcome());
                tracing::warn!(reason = %refusal, "webhook request refused");
                refusal.into_response()
            }
        }
    }
    .instrument(span)
    .await
}

type Handled = (&'static str, &'static str, Response);

async fn handle(
    webhook: &Webhook,
    params: &Params,
    headers: &http::HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Handled, (&'static str, Refusal)> {
    let unknown = |r| ("unknown", r);
    let body = read_capped(headers, body).await.map_err(unknown)?;
    let token = webhook.token();
    params.verify(token).map_err(unknown)?;
    let keys = &webhook.inner.keys;
    let opened = modes::open(keys, token, params, &body).map_err(|r| {
        let mode = if params.encrypted() {
            "encrypted"
        } else {
            "plain"
        };
        (mode, r)
    })?;
    let mode = opened.mode.label();
    let span = tracing::Span::current();
    span.record("mode", mode);
    span.record("msg_type", msg_type(&opened.inbound));
    let openid = OpenId::parse(&opened.inbound.from_user).map_err(|_| (mode, Refusal::OpenId))?;
    span.record("openid", tracing::field::debug(&openid));

    let Some(work) = conversational(&opened.inbound) else {
        return Ok((mode, "success", xml::SUCCESS.into_response()));
    };
    let (outcome, kept) = answer(webhook, &opened, openid, work, started).await;
    let response = match kept {
        Kept::Nothing => xml::SUCCESS.into_response(),
        Kept::Text(text) => {
            let reply = xml::text_reply(
                &opened.inbound.from_user,
                &opened.inbound.to_user,
                chrono::Utc::now().timestamp(),
                &text,
            );
            let body = modes::seal(keys, token, &opened, reply);
            (
                [(http::header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                body,
            )
                .into_response()
        }
    };
    Ok((mode, outcome, response))
}

/// Reads the body, refusing more than [`MAX_BODY`] before reading it when the length is
/// declared, and while reading when it is not.
async fn read_capped(headers: &http::HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(Refusal::TooLarge(MAX_BODY));
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Refusal::TooLarge(MAX_BODY))
}

/// The conversation's view of a push, or `None` for pushes that want no answer (menu
/// VIEW jumps, template delivery reports, location reports …): those get `success` at once.
fn conversational(inbound: &Inbound) -> Option<chat::Inbound> {
    Some(match &inbound.kind {
        InboundKind::Text { content } => chat::Inbound::Text(content.clone()),
        InboundKind::Image { media_id, .. } => chat::Inbound::Image {
            media_id: media_id.clone(),
        },
        InboundKind::Other { msg_type } => chat::Inbound::Other(msg_type.clone()),
        InboundKind::Event(Event::Subscribe { .. }) => chat::Inbound::Subscribe,
        InboundKind::Event(Event::Unsubscribe) => chat::Inbound::Unsubscribe,
        InboundKind::Event(Event::Click { key }) => chat::Inbound::Click(key.clone()),
        InboundKind::Event(Event::Scan { .. }) => chat::Inbound::Other("SCAN".to_owned()),
        InboundKind::Event(Event::View { .. } | Event::Other { .. }) => return None,
    })
}

fn msg_type(inbound: &Inbound) -> &str {
    match &inbound.kind {
        InboundKind::Text { .. } => "text",
        InboundKind::Image { .. } => "image",
        InboundKind::Other { msg_type } => msg_type,
        InboundKind::Event(e) => e.name(),
    }
}

/// Dedupe, then the conversation within the deadline. Returns the metric outcome and the
/// reply to seal.
async fn answer(
    webhook: &Webhook,
    opened: &Opened,
    openid: OpenId,
    work: chat::Inbound,
    started: Instant,
) -> (&'static str, Kept) {
    let budget = webhook.inner.gateway.config.reply_deadline;
    let until = started + budget;
    let key = opened.inbound.dedupe_key();
    let dedupe = &webhook.inner.dedupe;
    let store = match dedupe.claim(&key).await {
        Claim::Done(kept) => return ("duplicate", kept),
        Claim::Pending(store) => {
            return match dedupe.wait(&key, store, until).await {
                Some(kept) => ("duplicate", kept),
                None => ("duplicate_pending", Kept::Nothing),
            };
        }
        Claim::First(store) => store,
    };

    metrics::counter!(WORK).increment(1);
    let gateway = webhook.inner.gateway.clone();
    let late_gateway = gateway.clone();
    let late_openid = openid.clone();
    let remaining = until.saturating_duration_since(Instant::now());
    let answer = deadline::within(
        remaining,
        async move { chat::respond(&gateway, &openid, work).await },
        move |reply| async move { deliver_late(&late_gateway, &late_openid, reply).await },
    )
    .await;
    let (outcome, kept) = match answer {
        deadline::Answer::InTime(chat::Reply::Text(text)) => ("replied", Kept::Text(text)),
        deadline::Answer::InTime(chat::Reply::Nothing) => ("success", Kept::Nothing),
        // Retries must not get the answer again as a passive reply: it goes out (or went
        // out) as a customer-service message.
        deadline::Answer::Late => ("late", Kept::Nothing),
        deadline::Answer::Failed => {
            tracing::error!("conversation failed; answering success");
            ("failed", Kept::Nothing)
        }
    };
    dedupe.finish(&key, store, &kept).await;
    (outcome, kept)
}

/// Sends an answer that missed the deadline through the customer-service message API.
async fn deliver_late(gateway: &Gateway, openid: &OpenId, reply: chat::Reply) {
    let chat::Reply::Text(text) = reply else {
        metrics::counter!(LATE, "outcome" => "nothing").increment(1);
        return;
    };
    match gateway.wechat.send_text(openid.as_str(), &text).await {
        Ok(()) => {
            metrics::counter!(LATE, "outcome" => "sent").increment(1);
            tracing::info!("late answer sent as a customer-service message");
        }
        Err(error) => {
            metrics::counter!(LATE, "outcome" => "failed").increment(1);
            tracing::warn!(%error, "late answer could not be sent");
        }
    }
}
