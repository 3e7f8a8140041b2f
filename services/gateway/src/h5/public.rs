//! The pages anyone may read: the index, 政策 (programs and their
//! standards) and 项目 (projects with money by source).

use askama::Template;
use axum::{
    extract::{Query, State},
    response::Response,
};
use huimin_proto::{
    common::v1::PageRequest,
    ledger::v1::{ListProgramsRequest, PeriodKind, Program},
    registry::v1::{
        Funding, ProjectKind, ProjectStatus, PublicProjectRequest, PublicSummary,
        SearchProjectsRequest,
    },
};
use serde::Deserialize;

use super::{
    H5, H5Error,
    disclosure::{VillageChoice, find_villages, is_village_code},
    money::yuan,
    render,
    visit::Visit,
};

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    title: &'static str,
}

pub async fn index(State(h5): State<H5>, visit: Visit) -> Result<Response, H5Error> {
    let page = IndexPage {
        title: "惠民资金监督",
    };
    Ok(visit.page(&h5, render(&page)?))
}

struct PolicyView {
    name: String,
    department: String,
    standard: String,
    eligibility: String,
    legal_basis: String,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    title: &'static str,
    programs: Vec<PolicyView>,
}

/// The programs, each with its standard in words a villager reads.
pub async fn programs(h5: &H5) -> Result<Vec<Program>, H5Error> {
    h5.gateway
        .ledger
        .call(|mut ledger| async move { ledger.list_programs(ListProgramsRequest {}).await })
        .await
        .map(|r| r.into_inner().programs)
        .map_err(|status| H5Error::from_status("ledger", &status))
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
        format!("{whom}{per} {} 元", yuan(program.standard_fen))
    } else if program.ceiling_fen > 0 {
        format!("{whom}{per}最高 {} 元", yuan(program.ceiling_fen))
    } else {
        "按实际核定".to_owned()
    }
}

pub async fn policies(State(h5): State<H5>, visit: Visit) -> Result<Response, H5Error> {
    let programs = programs(&h5)
        .await?
        .into_iter()
        .map(|p| PolicyView {
            standard: standard(&p),
            name: p.name,
            department: p.department,
            eligibility: p.eligibility,
            legal_basis: p.legal_basis,
        })
        .collect();
    let page = PoliciesPage {
        title: "政策",
        programs,
    };
    Ok(visit.page(&h5, render(&page)?))
}

#[derive(Deserialize)]
pub struct ProjectsQuery {
    #[serde(default)]
    village: String,
    #[serde(default)]
    code: String,
}

struct ProjectView {
    name: String,
    kind: &'static str,
    year: i32,
    status: &'static str,
    approved: String,
    disbursed: String,
    contractor: String,
    department: String,
    funding: Vec<(&'static str, String)>,
}

struct TotalsView {
    projects: u64,
    approved: String,
    disbursed: String,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    title: &'static str,
    village: String,
    choices: Vec<VillageChoice>,
    projects: Vec<ProjectView>,
    totals: Option<TotalsView>,
    searched: bool,
}

pub async fn projects(
    State(h5): State<H5>,
    visit: Visit,
    Query(query): Query<ProjectsQuery>,
) -> Result<Response, H5Error> {
    let village = query.village.trim().to_owned();
    let mut page = ProjectsPage {
        title: "项目",
        village: village.clone(),
        choices: Vec::new(),
        projects: Vec::new(),
        totals: None,
        searched: false,
    };
    let code = if is_village_code(&query.code) {
        Some(query.code.clone())
    } else if !village.is_empty() {
        let mut found = find_villages(&h5, &village).await?;
        if found.len() == 1 {
            found.pop().map(|c| c.code)
        } else {
            if found.is_empty() {
                return Err(H5Error::Invalid(format!(
                    "没有叫“{village}”的村，请检查村名。"
                )));
            }
            page.choices = found;
            None
        }
    } else {
        None
    };
    // Registry searches within a town or a village, never the whole county.
    if let Some(code) = code.clone().filter(|_| page.choices.is_empty()) {
        let request = SearchProjectsRequest {
            village_code: code,
            page: Some(PageRequest {
                page_size: 20,
                page_token: String::new(),
            }),
            ..Default::default()
        };
        let found = h5
            .gateway
            .registry
            .call(|mut registry| {
                let request = request.clone();
                async move { registry.search_projects(request).await }
            })
            .await
            .map_err(|status| H5Error::from_status("registry", &status))?
            .into_inner();
        page.searched = true;
        page.totals = found.totals.map(|t| TotalsView {
            projects: t.projects,
            approved: yuan(t.approved_fen),
            disbursed: yuan(t.disbursed_fen),
        });
        for summary in found.projects {
            // Money by source: one more call for each of a village's few projects.
            let funding = funding(&h5, &summary.code).await?;
            page.projects.push(project_view(summary, funding));
        }
    }
    Ok(visit.page(&h5, render(&page)?))
}

async fn funding(h5: &H5, code: &str) -> Result<Vec<(&'static str, String)>, H5Error> {
    let request = PublicProjectRequest {
        code: code.to_owned(),
    };
    let project = h5
        .gateway
        .registry
        .call(|mut registry| {
            let request = request.clone();
            async move { registry.public_project(request).await }
        })
        .await
        .map_err(|status| H5Error::from_status("registry", &status))?
        .into_inner();
    let Some(Funding {
        central_fen,
        region_fen,
        city_fen,
        county_fen,
        other_fen,
    }) = project.details.and_then(|d| d.funding)
    else {
        return Ok(Vec::new());
    };
    Ok([
        ("中央资金", central_fen),
        ("自治区资金", region_fen),
        ("市级资金", city_fen),
        ("县级资金", county_fen),
        ("其他资金", other_fen),
    ]
    .into_iter()
    .filter(|(_, fen)| *fen != 0)
    .map(|(source, fen)| (source, yuan(fen)))
    .collect())
}

fn project_view(p: PublicSummary, funding: Vec<(&'static str, String)>) -> ProjectView {
    ProjectView {
        kind: kind_label(p.kind()),
        status: status_label(p.status()),
        name: p.name,
        year: p.year,
        approved: yuan(p.approved_fen),
        disbursed: yuan(p.disbursed_fen),
        contractor: p.contractor,
        department: p.department,
        funding,
    }
}

fn kind_label(kind: ProjectKind) -> &'static str {
    match kind {
        ProjectKind::Roads => "道路交通",
        ProjectKind::Water => "饮水安全",
        ProjectKind::Housing => "住房保障",
        ProjectKind::Industry => "产业发展",
        ProjectKind::Education => "教育",
        ProjectKind::Health => "医疗卫生",
        ProjectKind::Environment => "人居环境",
        ProjectKind::Other | ProjectKind::Unspecified => "其他",
    }
}

fn status_label(status: ProjectStatus) -> &'static str {
    match status {
        ProjectStatus::Planned => "计划",
        ProjectStatus::Approved => "已批复",
        ProjectStatus::UnderConstruction => "在建",
        ProjectStatus::Accepted => "已验收",
        ProjectStatus::Cancelled => "已取消",
        ProjectStatus::Unspecified => "未知",
    }
}
