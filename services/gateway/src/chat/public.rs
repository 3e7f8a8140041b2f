//! What anyone may read: 政策 (programs), 项目 (the village's projects) and
//! 公示 (a village's masked disclosure, the village found by name).

use std::time::Duration;

use huimin_kit::openid::OpenId;
use huimin_proto::{
    common::v1::PageRequest,
    identity::v1 as idpb,
    ledger::v1::{self as lpb, PeriodKind, Program},
    registry::v1 as rpb,
};
use serde::{Deserialize, Serialize};

use super::{Reply, account, apology, commands::names_program, format, texts};
use crate::{
    Gateway,
    limits::{Action, Caller},
    usage::Metric,
};

/// Villages change rarely; the list is shared by replicas for this long.
const DIVISIONS_TTL: Duration = Duration::from_secs(3600);
const DIVISIONS_KEY: &str = "gateway:divisions:v1";
/// A numbered choice is answered within this long.
const PICK_TTL: Duration = Duration::from_secs(600);
/// Projects shown with their money by source (one PublicProject call each).
const PROJECTS_SHOWN: usize = 3;
const DISCLOSURE_PAGE: u32 = 30;

fn pick_key(openid: &OpenId) -> String {
    format!("gateway:pick:{}", openid.as_str())
}

pub async fn policies(gateway: &Gateway, wanted: Option<&str>) -> Reply {
    let programs = match gateway
        .ledger
        .call(|mut client| async move { client.list_programs(lpb::ListProgramsRequest {}).await })
        .await
    {
        Ok(response) => response.into_inner().programs,
        Err(status) => return apology("ledger", &status),
    };
    let more = format!("详见：{}/h5/policies", gateway.config.public_url);
    match wanted {
        None => {
            let lines: Vec<String> = programs
                .iter()
                .map(|p| format!("{}：{}", p.name, standard(p)))
                .collect();
            let head = "补贴项目和标准（回复“政策 项目名”看条件）：";
            Reply::Text(format::bounded(head, &lines, &more))
        }
        Some(name) => {
            let found: Vec<&Program> = programs
                .iter()
                .filter(|p| names_program(name, &p.name, &p.code))
                .collect();
            if found.is_empty() {
                return Reply::Text(format!("没有找到“{}”。\n{more}", format::cut(name, 60)));
            }
            let lines: Vec<String> = found
                .iter()
                .map(|p| {
                    let mut line = format!("{}：{}", p.name, standard(p));
                    if !p.eligibility.is_empty() {
                        line.push_str(&format!("\n条件：{}", p.eligibility));
                    }
                    if !p.legal_basis.is_empty() {
                        line.push_str(&format!("\n依据：{}", p.legal_basis));
                    }
                    line
                })
                .collect();
            Reply::Text(format::bounded("", &lines, &more).trim_start().to_owned())
        }
    }
}

fn standard(program: &Program) -> String {
    let per = match PeriodKind::try_from(program.period_kind) {
        Ok(PeriodKind::Monthly) => "每月",
        Ok(PeriodKind::Quarterly) => "每季度",
        Ok(PeriodKind::Yearly) => "每年",
        _ => "一次性",
    };
    let whom = if program.per_household {
        "每户"
    } else {
        "每人"
    };
    if program.standard_fen > 0 {
        format!("{whom}{per}{}", format::yuan(program.standard_fen))
    } else if program.ceiling_fen > 0 {
        format!("{whom}{per}最高{}", format::yuan(program.ceiling_fen))
    } else {
        "按核定金额发放".to_owned()
    }
}

/// 项目: the projects of the bound person's village, with money by source.
pub async fn projects(gateway: &Gateway, openid: &OpenId) -> Reply {
    let persons = match account::bound(gateway, openid).await {
        Ok(persons) => persons,
        Err(reply) => return reply,
    };
    let Some(village) = persons
        .iter()
        .map(|p| p.village_code.clone())
        .find(|v| !v.is_empty())
    else {
        return Reply::text(texts::NOT_BOUND);
    };
    let request = rpb::SearchProjectsRequest {
        village_code: village.clone(),
        page: Some(PageRequest {
            page_size: 20,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    let found = match gateway
        .registry
        .call(|mut client| {
            let request = request.clone();
            async move { client.search_projects(request).await }
        })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return apology("registry", &status),
    };
    let more = format!(
        "全部项目：{}/h5/projects?village={village}",
        gateway.config.public_url
    );
    if found.projects.is_empty() {
        return Reply::Text(format!("本村暂无公开的项目。\n{more}"));
    }
    let mut lines = Vec::new();
    for (i, summary) in found.projects.iter().enumerate() {
        let mut line = format!(
            "{}. {}（{}年）批复{}，已拨付{}",
            i + 1,
            summary.name,
            summary.year,
            format::yuan(summary.approved_fen),
            format::yuan(summary.disbursed_fen)
        );
        if i < PROJECTS_SHOWN
            && let Some(sources) = sources(gateway, &summary.code).await
        {
            line.push_str(&format!("\n   资金来源：{sources}"));
        }
        lines.push(line);
    }
    let head = match &found.totals {
        Some(t) => format!(
            "本村项目{}个，批复合计{}，已拨付{}：",
            t.projects,
            format::yuan(t.approved_fen),
            format::yuan(t.disbursed_fen)
        ),
        None => "本村项目：".to_owned(),
    };
    let text = format::bounded(&head, &lines, &more);
    if text.ends_with(&more) {
        Reply::Text(text)
    } else {
        Reply::Text(format!("{text}\n{more}"))
    }
}

/// "中央100元、县级20元" from a project's funding, or `None` if unknown.
async fn sources(gateway: &Gateway, code: &str) -> Option<String> {
    let request = rpb::PublicProjectRequest {
        code: code.to_owned(),
    };
    let project = gateway
        .registry
        .call(|mut client| {
            let request = request.clone();
            async move { client.public_project(request).await }
        })
        .await
        .ok()?
        .into_inner();
    let funding = project.details?.funding?;
    Some(funding_text(&funding))
}

pub fn funding_text(funding: &rpb::Funding) -> String {
    let parts: Vec<String> = [
        ("中央", funding.central_fen),
        ("自治区", funding.region_fen),
        ("市级", funding.city_fen),
        ("县级", funding.county_fen),
        ("其他", funding.other_fen),
    ]
    .into_iter()
    .filter(|(_, fen)| *fen != 0)
    .map(|(source, fen)| format!("{source}{}", format::yuan(fen)))
    .collect();
    if parts.is_empty() {
        "未列明".to_owned()
    } else {
        parts.join("、")
    }
}

/// A village as a citizen names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Village {
    pub code: String,
    pub name: String,
    pub town: String,
}

async fn villages(gateway: &Gateway) -> Result<Vec<Village>, tonic::Status> {
    if let Some(cached) = gateway.cache.get_json::<Vec<Village>>(DIVISIONS_KEY).await {
        return Ok(cached);
    }
    let list = |parent: String| async move {
        let request = idpb::ListDivisionsRequest {
            parent_code: parent,
        };
        gateway
            .identity
            .call(|mut client| {
                let request = request.clone();
                async move { client.list_divisions(request).await }
            })
            .await
            .map(|r| r.into_inner().divisions)
    };
    let mut villages = Vec::new();
    for town in list(String::new()).await? {
        for village in list(town.code.clone()).await? {
            villages.push(Village {
                code: village.code,
                name: village.name,
                town: town.name.clone(),
            });
        }
    }
    gateway
        .cache
        .set_json(DIVISIONS_KEY, &villages, DIVISIONS_TTL)
        .await;
    Ok(villages)
}

/// The villages `name` may mean: an exact name wins; otherwise every
/// village whose name contains it.
pub fn matching<'a>(villages: &'a [Village], name: &str) -> Vec<&'a Village> {
    let exact: Vec<&Village> = villages.iter().filter(|v| v.name == name).collect();
    if !exact.is_empty() {
        return exact;
    }
    let bare = name.trim_end_matches('村');
    if bare.is_empty() {
        return Vec::new();
    }
    villages.iter().filter(|v| v.name.contains(bare)).collect()
}

pub async fn disclosure_by_name(
    gateway: &Gateway,
    caller: &Caller,
    openid: &OpenId,
    text: &str,
) -> Reply {
    let mut words = text.split_whitespace();
    let name = words.next().unwrap_or_default();
    let program = words.next();
    let villages = match villages(gateway).await {
        Ok(villages) => villages,
        Err(status) => return apology("identity", &status),
    };
    let found = matching(&villages, name);
    match found.as_slice() {
        [] => Reply::text(texts::VILLAGE_UNKNOWN),
        [one] => disclosure(gateway, caller, &one.code, &one.name, program).await,
        many => {
            let choices: Vec<Village> = many.iter().take(9).map(|v| (*v).clone()).collect();
            gateway
                .cache
                .set_json(&pick_key(openid), &choices, PICK_TTL)
                .await;
            let lines: Vec<String> = choices
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{}. {}（{}）", i + 1, v.name, v.town))
                .collect();
            Reply::Text(format!(
                "有几个村叫这个名字，请回复序号：\n{}",
                lines.join("\n")
            ))
        }
    }
}

/// A number reply: picks from the last numbered choice of villages.
pub async fn pick(gateway: &Gateway, caller: &Caller, openid: &OpenId, n: usize) -> Reply {
    let Some(choices) = gateway
        .cache
        .get_json::<Vec<Village>>(&pick_key(openid))
        .await
    else {
        return Reply::text(texts::PICK_NOTHING);
    };
    match choices.get(n - 1) {
        Some(village) => disclosure(gateway, caller, &village.code, &village.name, None).await,
        None => Reply::Text(format!("请回复1到{}之间的序号。", choices.len())),
    }
}

async fn disclosure(
    gateway: &Gateway,
    caller: &Caller,
    village: &str,
    village_name: &str,
    wanted: Option<&str>,
) -> Reply {
    if let Err(limited) = gateway.limits.check(Action::Disclosure, caller).await {
        return Reply::Text(limited.message_zh);
    }
    gateway.usage.count(Metric::DisclosureLookups, 1);
    let more = format!(
        "完整名单：{}/h5/disclosure?village={village}",
        gateway.config.public_url
    );
    let found = match latest_disclosure(gateway, village, wanted).await {
        Ok(Some(found)) => found,
        Ok(None) => return Reply::Text(format!("{village_name}暂无公示的发放记录。\n{more}")),
        Err(status) => return apology("ledger", &status),
    };
    let head = format!(
        "{village_name} {} {}：共{}人，合计{}",
        found.program_name,
        format::period(&found.period),
        found.total_persons,
        format::yuan(found.total_fen)
    );
    let lines: Vec<String> = found
        .entries
        .iter()
        .map(|e| format!("{} {}", e.name_masked, format::yuan(e.amount_fen)))
        .collect();
    let text = format::bounded(&head, &lines, &more);
    if text.ends_with(&more) {
        Reply::Text(text)
    } else {
        Reply::Text(format!("{text}\n{more}"))
    }
}

/// The village's latest disclosure: the year with payments, the program
/// with the most money that year (or the one named), its latest period
/// with payments.
async fn latest_disclosure(
    gateway: &Gateway,
    village: &str,
    wanted: Option<&str>,
) -> Result<Option<lpb::VillageDisclosureResponse>, tonic::Status> {
    let totals = |group_by: lpb::GroupBy, year: i32| {
        let request = lpb::TotalsRequest {
            group_by: group_by as i32,
            village_code: village.to_owned(),
            year,
            ..Default::default()
        };
        async move {
            gateway
                .ledger
                .call(|mut client| {
                    let request = request.clone();
                    async move { client.totals(request).await }
                })
                .await
                .map(|r| r.into_inner().totals)
        }
    };
    let years = totals(lpb::GroupBy::Year, 0).await?;
    let Some(year) = years
        .iter()
        .filter(|t| t.payments > 0)
        .filter_map(|t| t.key.parse::<i32>().ok())
        .max()
    else {
        return Ok(None);
    };
    let programs = gateway
        .ledger
        .call(|mut client| async move { client.list_programs(lpb::ListProgramsRequest {}).await })
        .await?
        .into_inner()
        .programs;
    let mut paid = totals(lpb::GroupBy::Program, year).await?;
    paid.sort_by_key(|t| std::cmp::Reverse(t.amount_fen));
    let program = paid.iter().find_map(|t| {
        programs.iter().find(|p| {
            p.code == t.key && wanted.is_none_or(|name| names_program(name, &p.name, &p.code))
        })
    });
    let Some(program) = program else {
        return Ok(None);
    };
    for period in periods(program, year) {
        let request = lpb::VillageDisclosureRequest {
            village_code: village.to_owned(),
            program_code: program.code.clone(),
            period,
            page: Some(PageRequest {
                page_size: DISCLOSURE_PAGE,
                page_token: String::new(),
            }),
        };
        let found = gateway
            .ledger
            .call(|mut client| {
                let request = request.clone();
                async move { client.village_disclosure(request).await }
            })
            .await?
            .into_inner();
        if found.total_persons > 0 {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The periods of `year`, latest first.
fn periods(program: &Program, year: i32) -> Vec<String> {
    match PeriodKind::try_from(program.period_kind) {
        Ok(PeriodKind::Monthly) => (1..=12).rev().map(|m| format!("{year}-{m:02}")).collect(),
        Ok(PeriodKind::Quarterly) => (1..=4).rev().map(|q| format!("{year}-Q{q}")).collect(),
        _ => vec![year.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn village(code: &str, name: &str, town: &str) -> Village {
        Village {
            code: code.into(),
            name: name.into(),
            town: town.into(),
        }
    }

    #[test]
    fn an_exact_name_wins_and_a_partial_one_offers_a_choice() {
        let all = vec![
            village("1", "大旺村", "甲镇"),
            village("2", "大旺新村", "乙镇"),
            village("3", "小河村", "乙镇"),
        ];
        assert_eq!(matching(&all, "大旺村").len(), 1);
        assert_eq!(matching(&all, "大旺").len(), 2);
        assert!(matching(&all, "村").is_empty());
        assert!(matching(&all, "山口村").is_empty());
    }

    #[test]
    fn funding_lists_the_sources_with_money() {
        let funding = rpb::Funding {
            central_fen: 10_000_000,
            county_fen: 250_050,
            ..Default::default()
        };
        assert_eq!(funding_text(&funding), "中央100000元、县级2500.50元");
        assert_eq!(funding_text(&rpb::Funding::default()), "未列明");
    }
}
