//! Following, binding and 查询: what the citizen's own openid unlocks.

use std::collections::BTreeSet;

use huimin_kit::{
    cache::{BINDING_ANSWER_TTL, Current, openid_bindings_generation},
    openid::OpenId,
};
use huimin_proto::{
    common::v1::PageRequest,
    identity::v1 as idpb,
    ledger::v1::{self as lpb, Payment},
};
use tonic::Code;

use super::{
    Reply, apology,
    commands::{TypedIdNumber, names_program},
    format, report, texts,
};
use crate::{
    Gateway,
    limits::{Action, Caller},
    usage::Metric,
};

/// Payments listed in a chat reply; the rest are on the 我的补贴 page.
const SHOWN: usize = 10;
/// Payments asked of ledger per household when 查询 names a month or a program, which are
/// matched among them; a plain 查询 asks for one more than it shows, enough to know there
/// are more (a page of 50 decoded, sent and sorted for 10 lines was most of its cost).
const PAGE: u32 = 50;
const PLAIN_PAGE: u32 = SHOWN as u32 + 1;

pub fn follow(gateway: &Gateway) -> Reply {
    Reply::text(format!(
        "{}\n\n{}\n\n也可以打开页面：{}/h5/my",
        texts::WELCOME,
        texts::HELP,
        gateway.config.public_url
    ))
}

/// 取消关注: WeChat requires that what an openid set up is removed. Bindings
/// go through identity; a report draft is dropped. Subscriptions would be
/// removed here too, but the notify service does not exist yet.
pub async fn unfollow(gateway: &Gateway, openid: &OpenId) -> Reply {
    let request = idpb::UnbindOpenIdRequest {
        openid: openid.as_str().to_owned(),
        person_key: String::new(),
    };
    if let Err(status) = gateway
        .identity
        .call(|mut client| {
            let request = request.clone();
            async move { client.unbind_open_id(request).await }
        })
        .await
    {
        // NotFound: nothing was bound, nothing to remove.
        if status.code() != Code::NotFound {
            tracing::warn!(code = ?status.code(), "unfollow: bindings not removed");
        }
    }
    report::drop_draft(gateway, openid).await;
    Reply::Nothing
}

pub async fn bind(
    gateway: &Gateway,
    caller: &Caller,
    openid: &OpenId,
    id_number: &TypedIdNumber,
    name: &str,
) -> Reply {
    if let Err(limited) = gateway.limits.check(Action::Bind, caller).await {
        return Reply::Text(limited.message_zh);
    }
    let request = idpb::BindOpenIdRequest {
        openid: openid.as_str().to_owned(),
        id_number: id_number.0.clone(),
        name: name.to_owned(),
    };
    let answer = gateway
        .identity
        .call(|mut client| {
            let request = request.clone();
            async move { client.bind_open_id(request).await }
        })
        .await;
    match answer {
        Ok(response) => {
            gateway.usage.count(Metric::RealNameLookups, 1);
            let response = response.into_inner();
            let who = response
                .person
                .map(|p| p.name)
                .unwrap_or_else(|| name.to_owned());
            Reply::text(format!(
                "绑定成功：{who}。\n回复“查询”查看补贴发放记录。还可绑定{}位家人。",
                response.remaining_slots
            ))
        }
        Err(status) => match status.code() {
            // identity answers "unknown" and "wrong name" alike, so the roll can't be probed.
            Code::InvalidArgument | Code::NotFound => Reply::text(texts::BIND_REFUSED),
            Code::ResourceExhausted => Reply::text(texts::BIND_TOO_MANY),
            Code::FailedPrecondition => Reply::text(texts::BIND_LIMIT),
            _ => apology("identity", &status),
        },
    }
}

pub async fn unbind(gateway: &Gateway, openid: &OpenId) -> Reply {
    let request = idpb::UnbindOpenIdRequest {
        openid: openid.as_str().to_owned(),
        person_key: String::new(),
    };
    match gateway
        .identity
        .call(|mut client| {
            let request = request.clone();
            async move { client.unbind_open_id(request).await }
        })
        .await
    {
        Ok(response) if response.get_ref().removed > 0 => Reply::text(texts::UNBOUND),
        Ok(_) => Reply::text(texts::NOT_BOUND),
        Err(status) if status.code() == Code::NotFound => Reply::text(texts::NOT_BOUND),
        Err(status) => apology("identity", &status),
    }
}

/// What 查询 and 项目 need of a person an openid is bound to: keys and codes, no name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoundRef {
    pub person_key: String,
    pub household_code: String,
    pub village_code: String,
}

/// The persons `openid` is bound to; a reply asking to bind when there are none.
///
/// identity's answer is kept in the shared cache under the openid's binding generation,
/// which identity moves on at every bind and unbind before the call returns, so an
/// unbinding counts on the next message while a hot openid's 查询 asks identity nothing
/// (the page itself comes from Redis's client-side cache, in this process's memory).
/// Only bindings are kept, never "not bound", so a binding made a moment ago counts at
/// once; the clear name stays out of the cache.
pub async fn bound(gateway: &Gateway, openid: &OpenId) -> Result<Vec<BoundRef>, Reply> {
    let generation = openid_bindings_generation(openid.as_str());
    let key = format!("gateway:bound:{}", openid.as_str());
    let kept = gateway
        .cache
        .get_current::<Vec<BoundRef>>(&generation, &key)
        .await;
    if let Current::Hit(persons) = &kept
        && !persons.is_empty()
    {
        return Ok(persons.clone());
    }
    let request = idpb::ResolveOpenIdRequest {
        openid: openid.as_str().to_owned(),
    };
    let persons: Vec<BoundRef> = match gateway
        .identity
        .call(|mut client| {
            let request = request.clone();
            async move { client.resolve_open_id(request).await }
        })
        .await
    {
        Ok(response) => response
            .into_inner()
            .persons
            .into_iter()
            .map(|p| BoundRef {
                person_key: p.person_key,
                household_code: p.household_code,
                village_code: p.village_code,
            })
            .collect(),
        Err(status) if status.code() == Code::NotFound => Vec::new(),
        Err(status) => return Err(apology("identity", &status)),
    };
    if persons.is_empty() {
        return Err(Reply::text(texts::NOT_BOUND));
    }
    if let Current::Miss(under) = kept {
        gateway
            .cache
            .put_current(&generation, &key, under, &persons, BINDING_ANSWER_TTL)
            .await;
    }
    Ok(persons)
}

/// 查询: the latest payments of the bound persons and their households.
pub async fn query(
    gateway: &Gateway,
    openid: &OpenId,
    month: Option<u32>,
    program: Option<&str>,
) -> Reply {
    let persons = match bound(gateway, openid).await {
        Ok(persons) => persons,
        Err(reply) => return reply,
    };
    gateway.usage.count(Metric::RealNameLookups, 1);
    let page_size = if month.is_none() && program.is_none() {
        PLAIN_PAGE
    } else {
        PAGE
    };
    let mut payments: Vec<Payment> = Vec::new();
    let households: BTreeSet<&str> = persons
        .iter()
        .map(|p| p.household_code.as_str())
        .filter(|h| !h.is_empty())
        .collect();
    for household in households {
        let request = lpb::HouseholdPaymentsRequest {
            household_code: household.to_owned(),
            openid: openid.as_str().to_owned(),
            page: Some(PageRequest {
                page_size,
                page_token: String::new(),
            }),
        };
        match gateway
            .ledger
            .call(|mut client| {
                let request = request.clone();
                async move { client.household_payments(request).await }
            })
            .await
        {
            Ok(page) => payments.extend(page.into_inner().payments),
            Err(status) => return apology("ledger", &status),
        }
    }
    // A person without a household code is asked for alone.
    for person in persons.iter().filter(|p| p.household_code.is_empty()) {
        let request = lpb::PersonPaymentsRequest {
            person_key: person.person_key.clone(),
            openid: openid.as_str().to_owned(),
            page: Some(PageRequest {
                page_size,
                page_token: String::new(),
            }),
        };
        match gateway
            .ledger
            .call(|mut client| {
                let request = request.clone();
                async move { client.person_payments(request).await }
            })
            .await
        {
            Ok(page) => payments.extend(page.into_inner().payments),
            Err(status) => return apology("ledger", &status),
        }
    }
    let more = format!("全部记录请打开：{}/h5/my", gateway.config.public_url);
    let lines = lines(payments, month, program);
    if lines.is_empty() {
        return Reply::Text(format!("{}\n{more}", texts::NOTHING_FOUND));
    }
    let head = "最近的补贴发放：";
    let shown = &lines[..lines.len().min(SHOWN)];
    let text = format::bounded(head, shown, &more);
    if lines.len() > SHOWN && !text.ends_with(&more) {
        return Reply::Text(format!("{text}\n……还有更多记录\n{more}"));
    }
    Reply::Text(text)
}

/// The reply's lines, newest period first, one per payment (a reversed
/// payment is marked so).
pub fn lines(mut payments: Vec<Payment>, month: Option<u32>, program: Option<&str>) -> Vec<String> {
    payments.sort_by(|a, b| b.period.cmp(&a.period).then(b.id.cmp(&a.id)));
    payments.dedup_by_key(|p| p.id);
    payments
        .into_iter()
        .filter(|p| month.is_none_or(|m| format::period_month(&p.period) == Some(m)))
        .filter(|p| {
            program.is_none_or(|name| names_program(name, &p.program_name, &p.program_code))
        })
        .map(|p| {
            let reversal = if p.kind == lpb::PaymentKind::Reversal as i32 {
                "（冲回）"
            } else {
                ""
            };
            format!(
                "{} {} {} {}{reversal}",
                format::period(&p.period),
                p.program_name,
                p.name_masked,
                format::yuan(p.amount_fen)
            )
        })
        .collect()
}
