//! 我的补贴 (the citizen's and her household's payments by year) and 绑定
//! (an ID number and name bound to the openid). The ID number goes to
//! identity in a POST body and nowhere else: not in a URL, a log line, or
//! the page that answers.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::{Form, extract::State, response::Response};
use huimin_kit::openid::OpenId;
use huimin_proto::{
    common::v1::PageRequest,
    identity::v1::{BindOpenIdRequest, BoundPerson, ResolveOpenIdRequest},
    ledger::v1::{HouseholdPaymentsRequest, Payment, PaymentsPage, PersonPaymentsRequest},
};
use serde::Deserialize;

use super::{H5, H5Error, money::yuan, render, visit::Visit};
use crate::{limits::Action, usage::Metric};

struct Row {
    name: String,
    program: String,
    period: String,
    amount: String,
}

struct Year {
    year: String,
    own_total: String,
    household_total: String,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "my.html")]
struct MyPage {
    title: &'static str,
    persons: Vec<String>,
    years: Vec<Year>,
}

async fn bound_persons(h5: &H5, openid: &OpenId) -> Result<Vec<BoundPerson>, H5Error> {
    let request = ResolveOpenIdRequest {
        openid: openid.as_str().to_owned(),
    };
    h5.gateway
        .identity
        .call(|mut identity| {
            let request = request.clone();
            async move { identity.resolve_open_id(request).await }
        })
        .await
        .map(|r| r.into_inner().persons)
        .or_else(|status| match status.code() {
            // Identity's way of saying "bound to nobody yet".
            tonic::Code::NotFound => Ok(Vec::new()),
            _ => Err(H5Error::from_status("identity", &status)),
        })
}

fn first_page() -> Option<PageRequest> {
    Some(PageRequest {
        page_size: 200,
        page_token: String::new(),
    })
}

pub async fn page(State(h5): State<H5>, visit: Visit) -> Result<Response, H5Error> {
    let openid = match visit.openid_or_login(&h5, "/h5/my") {
        Ok(openid) => openid,
        Err(redirect) => return Ok(*redirect),
    };
    let persons = bound_persons(&h5, &openid).await?;
    let own: BTreeSet<String> = persons.iter().map(|p| p.person_key.clone()).collect();
    let mut payments: BTreeMap<i64, Payment> = BTreeMap::new();
    for person in &persons {
        let request = PersonPaymentsRequest {
            person_key: person.person_key.clone(),
            openid: openid.as_str().to_owned(),
            page: first_page(),
        };
        let page: PaymentsPage = h5
            .gateway
            .ledger
            .call(|mut ledger| {
                let request = request.clone();
                async move { ledger.person_payments(request).await }
            })
            .await
            .map_err(|status| H5Error::from_status("ledger", &status))?
            .into_inner();
        payments.extend(page.payments.into_iter().map(|p| (p.id, p)));
    }
    let households: BTreeSet<&str> = persons.iter().map(|p| p.household_code.as_str()).collect();
    for household in households {
        let request = HouseholdPaymentsRequest {
            household_code: household.to_owned(),
            openid: openid.as_str().to_owned(),
            page: first_page(),
        };
        let page: PaymentsPage = h5
            .gateway
            .ledger
            .call(|mut ledger| {
                let request = request.clone();
                async move { ledger.household_payments(request).await }
            })
            .await
            .map_err(|status| H5Error::from_status("ledger", &status))?
            .into_inner();
        payments.extend(page.payments.into_iter().map(|p| (p.id, p)));
    }
    h5.gateway.usage.count(Metric::RealNameLookups, 1);
    let page = MyPage {
        title: "我的补贴",
        persons: persons
            .iter()
            .map(|p| format!("{}（{}）", p.name, p.id_number_masked))
            .collect(),
        years: by_year(payments.into_values(), &own),
    };
    Ok(visit.page(&h5, render(&page)?))
}

/// Newest year first, each with the citizen's own and the household's sums.
fn by_year(payments: impl Iterator<Item = Payment>, own: &BTreeSet<String>) -> Vec<Year> {
    let mut years: BTreeMap<String, Vec<Payment>> = BTreeMap::new();
    for payment in payments {
        let year: String = payment.period.chars().take(4).collect();
        years.entry(year).or_default().push(payment);
    }
    years
        .into_iter()
        .rev()
        .map(|(year, mut payments)| {
            payments.sort_by(|a, b| b.period.cmp(&a.period).then(a.id.cmp(&b.id)));
            let own_fen: i64 = payments
                .iter()
                .filter(|p| own.contains(&p.person_key))
                .map(|p| p.amount_fen)
                .sum();
            let household_fen: i64 = payments.iter().map(|p| p.amount_fen).sum();
            Year {
                year,
                own_total: yuan(own_fen),
                household_total: yuan(household_fen),
                rows: payments
                    .into_iter()
                    .map(|p| Row {
                        name: p.name_masked,
                        program: p.program_name,
                        period: p.period,
                        amount: yuan(p.amount_fen),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "bind.html")]
struct BindPage {
    title: &'static str,
    csrf: String,
    bound: Option<String>,
    error: Option<String>,
}

pub async fn bind_form(State(h5): State<H5>, visit: Visit) -> Result<Response, H5Error> {
    if let Err(redirect) = visit.openid_or_login(&h5, "/h5/bind") {
        return Ok(*redirect);
    }
    let page = BindPage {
        title: "绑定身份",
        csrf: visit.session.csrf.clone(),
        bound: None,
        error: None,
    };
    Ok(visit.page(&h5, render(&page)?))
}

#[derive(Deserialize)]
pub struct BindForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    name: String,
}

pub async fn bind(
    State(h5): State<H5>,
    visit: Visit,
    Form(form): Form<BindForm>,
) -> Result<Response, H5Error> {
    visit.check_csrf(&form.csrf)?;
    let Some(openid) = visit.session.openid() else {
        return Err(H5Error::OAuth);
    };
    visit.limit(&h5, Action::Bind).await?;
    let request = BindOpenIdRequest {
        openid: openid.as_str().to_owned(),
        id_number: form.id_number.trim().to_owned(),
        name: form.name.trim().to_owned(),
    };
    let answer = h5
        .gateway
        .identity
        .call(|mut identity| {
            let request = request.clone();
            async move { identity.bind_open_id(request).await }
        })
        .await;
    let mut page = BindPage {
        title: "绑定身份",
        csrf: visit.session.csrf.clone(),
        bound: None,
        error: None,
    };
    match answer {
        Ok(answer) => {
            page.bound = answer
                .into_inner()
                .person
                .map(|p| format!("{}（{}）", p.name, p.id_number_masked));
        }
        // A wrong name or number is said on the form again, which is
        // re-shown empty: the number is never echoed back.
        Err(status) => match H5Error::from_status("identity", &status) {
            H5Error::Invalid(message) => page.error = Some(message),
            other => return Err(other),
        },
    }
    Ok(visit.page(&h5, render(&page)?))
}
