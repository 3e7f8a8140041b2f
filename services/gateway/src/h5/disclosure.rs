//! 村务公示: a village found by its name, the masked list of who got what
//! for one program and period, and the village's totals for the year.

use std::{collections::HashMap, time::Duration};

use askama::Template;
use axum::{
    extract::{Query, State},
    response::Response,
};
use huimin_proto::{
    common::v1::PageRequest,
    identity::v1::{Division, ListDivisionsRequest},
    ledger::v1::{GroupBy, TotalsRequest, VillageDisclosureRequest},
};
use serde::{Deserialize, Serialize};

use super::{H5, H5Error, money::yuan, public::programs, render, visit::Visit};
use crate::{limits::Action, usage::Metric};

/// Divisions change by decree, a few times a decade.
const DIVISIONS_TTL: Duration = Duration::from_secs(3600);
const DIVISIONS_KEY: &str = "gateway:h5:villages";

/// A village a name matched, with its town to tell namesakes apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VillageChoice {
    pub code: String,
    pub name: String,
    pub label: String,
}

pub fn is_village_code(code: &str) -> bool {
    code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit())
}

async fn divisions(h5: &H5, parent: &str) -> Result<Vec<Division>, H5Error> {
    let request = ListDivisionsRequest {
        parent_code: parent.to_owned(),
    };
    h5.gateway
        .identity
        .call(|mut identity| {
            let request = request.clone();
            async move { identity.list_divisions(request).await }
        })
        .await
        .map(|r| r.into_inner().divisions)
        .map_err(|status| H5Error::from_status("identity", &status))
}

/// Every village of the county, cached.
async fn villages(h5: &H5) -> Result<Vec<VillageChoice>, H5Error> {
    if let Some(villages) = h5.gateway.cache.get_json(DIVISIONS_KEY).await {
        return Ok(villages);
    }
    let mut villages = Vec::new();
    for town in divisions(h5, "").await? {
        for village in divisions(h5, &town.code).await? {
            villages.push(VillageChoice {
                label: format!("{} {}", town.name, village.name),
                code: village.code,
                name: village.name,
            });
        }
    }
    h5.gateway
        .cache
        .set_json(DIVISIONS_KEY, &villages, DIVISIONS_TTL)
        .await;
    Ok(villages)
}

/// The villages called `name` (exactly, or containing it when none is).
pub async fn find_villages(h5: &H5, name: &str) -> Result<Vec<VillageChoice>, H5Error> {
    let name = name.trim();
    let all = villages(h5).await?;
    let exact: Vec<_> = all.iter().filter(|v| v.name == name).cloned().collect();
    if !exact.is_empty() {
        return Ok(exact);
    }
    Ok(all.into_iter().filter(|v| v.name.contains(name)).collect())
}

#[derive(Deserialize)]
pub struct DisclosureQuery {
    #[serde(default)]
    village: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    program: String,
    #[serde(default)]
    period: String,
}

struct DisclosureView {
    village: String,
    program: String,
    period: String,
    persons: u64,
    total: String,
    rows: Vec<(String, String, String)>,
    year: String,
    year_totals: Vec<(String, u64, String)>,
}

#[derive(Template)]
#[template(path = "disclosure.html")]
struct DisclosurePage {
    title: &'static str,
    village: String,
    program: String,
    period: String,
    programs: Vec<(String, String)>,
    choices: Vec<VillageChoice>,
    disclosure: Option<DisclosureView>,
}

pub async fn page(
    State(h5): State<H5>,
    visit: Visit,
    Query(query): Query<DisclosureQuery>,
) -> Result<Response, H5Error> {
    let programs: Vec<(String, String)> = programs(&h5)
        .await?
        .into_iter()
        .map(|p| (p.code, p.name))
        .collect();
    let mut page = DisclosurePage {
        title: "村务公示",
        village: query.village.trim().to_owned(),
        program: query.program.trim().to_owned(),
        period: query.period.trim().to_owned(),
        programs,
        choices: Vec::new(),
        disclosure: None,
    };
    if page.village.is_empty() && query.code.is_empty() {
        return Ok(visit.page(&h5, render(&page)?));
    }
    visit.limit(&h5, Action::Disclosure).await?;
    let village = if is_village_code(&query.code) {
        villages(&h5)
            .await?
            .into_iter()
            .find(|v| v.code == query.code)
            .ok_or(H5Error::NotFound)?
    } else {
        let mut found = find_villages(&h5, &page.village).await?;
        match found.len() {
            0 => {
                return Err(H5Error::Invalid(format!(
                    "没有叫“{}”的村，请检查村名。",
                    page.village
                )));
            }
            1 => found.remove(0),
            _ => {
                page.choices = found;
                return Ok(visit.page(&h5, render(&page)?));
            }
        }
    };
    if page.program.is_empty() || page.period.is_empty() {
        return Err(H5Error::Invalid("请选择补贴项目并填写发放期。".to_owned()));
    }
    page.disclosure = Some(disclosure(&h5, &village, &page.program, &page.period).await?);
    h5.gateway.usage.count(Metric::DisclosureLookups, 1);
    Ok(visit.page(&h5, render(&page)?))
}

async fn disclosure(
    h5: &H5,
    village: &VillageChoice,
    program: &str,
    period: &str,
) -> Result<DisclosureView, H5Error> {
    let request = VillageDisclosureRequest {
        village_code: village.code.clone(),
        program_code: program.to_owned(),
        period: period.to_owned(),
        page: Some(PageRequest {
            page_size: 200,
            page_token: String::new(),
        }),
    };
    let found = h5
        .gateway
        .ledger
        .call(|mut ledger| {
            let request = request.clone();
            async move { ledger.village_disclosure(request).await }
        })
        .await
        .map_err(|status| H5Error::from_status("ledger", &status))?
        .into_inner();
    let year: String = found.period.chars().take(4).collect();
    let totals = TotalsRequest {
        group_by: GroupBy::Program.into(),
        village_code: village.code.clone(),
        year: year.parse().unwrap_or_default(),
        ..Default::default()
    };
    let names: HashMap<String, String> = super::public::programs(h5)
        .await?
        .into_iter()
        .map(|p| (p.code, p.name))
        .collect();
    let year_totals = h5
        .gateway
        .ledger
        .call(|mut ledger| {
            let totals = totals.clone();
            async move { ledger.totals(totals).await }
        })
        .await
        .map_err(|status| H5Error::from_status("ledger", &status))?
        .into_inner()
        .totals
        .into_iter()
        .map(|t| {
            let name = names.get(&t.key).cloned().unwrap_or(t.key);
            (name, t.persons, yuan(t.amount_fen))
        })
        .collect();
    Ok(DisclosureView {
        village: village.label.clone(),
        program: found.program_name,
        period: found.period,
        persons: found.total_persons,
        total: yuan(found.total_fen),
        rows: found
            .entries
            .into_iter()
            .map(|e| (e.name_masked, e.id_number_masked, yuan(e.amount_fen)))
            .collect(),
        year,
        year_totals,
    })
}
