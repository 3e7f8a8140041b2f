//! Public lookups: projects of a town or village (by kind and year) with
//! totals, and one project with the history of its money. Both are cached
//! under a generation counter that every committed change moves on.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    PROJECTS_GENERATION, Registry, RegistryError,
    domain::{Kind, MONEY_FIELDS},
    projects::{PROJECT_COLUMNS, Project, ProjectRow},
};

/// How long a cached page may live; also bounds staleness if an
/// invalidation could not reach Redis.
pub const CACHE_TTL: Duration = Duration::from_secs(120);
const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;

/// What the public searches by.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub town: Option<String>,
    pub village: Option<String>,
    pub kind: Option<Kind>,
    pub year: Option<i32>,
}

/// Totals over every page of a search; cancelled projects don't count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Totals {
    pub projects: i64,
    pub approved_fen: i64,
    pub disbursed_fen: i64,
    pub households: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub projects: Vec<Project>,
    pub next_page_token: String,
    pub totals: Totals,
}

/// One change of a project's money: when, and the money fields that moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyChange {
    pub at: DateTime<Utc>,
    pub changes: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicProject {
    pub project: Project,
    pub money_history: Vec<MoneyChange>,
}

/// The id a page continues after (kind "r"), 0 for the first page.
fn decode_token(token: &str) -> Result<i64, RegistryError> {
    match huimin_kit::page::decode("r", token) {
        Some(id) => Ok(id.unwrap_or(0)),
        None => Err(RegistryError::invalid("page_token", "分页标记无效")),
    }
}

fn encode_token(last_id: i64) -> String {
    huimin_kit::page::encode("r", last_id)
}

impl Registry {
    /// A page of projects matching `search`, in id order, with totals.
    #[tracing::instrument(skip_all)]
    pub async fn search(
        &self,
        search: &Search,
        page_token: &str,
        size: u32,
    ) -> Result<SearchPage, RegistryError> {
        let digits = |t: &str, n| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        match (&search.town, &search.village) {
            (None, None) => {
                return Err(RegistryError::invalid("town_code", "请选择乡镇或村"));
            }
            (Some(town), _) if !digits(town, 9) => {
                return Err(RegistryError::invalid("town_code", "乡镇代码应为9位数字"));
            }
            (_, Some(village)) if !digits(village, 12) => {
                return Err(RegistryError::invalid("village_code", "村代码应为12位数字"));
            }
            _ => {}
        }
        let after = decode_token(page_token)?;
        let size = huimin_kit::page::size(size, DEFAULT_PAGE, MAX_PAGE);
        let key = format!(
            "registry:search:{}:{}:{}:{}:{after}:{size}",
            search.town.as_deref().unwrap_or(""),
            search.village.as_deref().unwrap_or(""),
            search.kind.map_or("", Kind::as_str),
            search.year.unwrap_or(0),
        );
        let compute = async {
            let filter =
                "($1::text IS NULL OR town_code = $1) AND ($2::text IS NULL OR village_code = $2)
                      AND ($3::text IS NULL OR kind = $3) AND ($4::int IS NULL OR year = $4)";
            let kind = search.kind.map(Kind::as_str);
            // One row more than the page tells whether another page follows.
            let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE {filter} AND id > $5 ORDER BY id LIMIT $6"
        ))
        .bind(&search.town)
        .bind(&search.village)
        .bind(kind)
        .bind(search.year)
        .bind(after)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
            let totals: Totals = sqlx::query_as(&format!(
            "SELECT count(*) AS projects, COALESCE(sum(approved_fen), 0)::bigint AS approved_fen,
                    COALESCE(sum(disbursed_fen), 0)::bigint AS disbursed_fen,
                    COALESCE(sum(beneficiary_households), 0)::bigint AS households
             FROM projects WHERE {filter} AND status <> 'cancelled'"
        ))
            .bind(&search.town)
            .bind(&search.village)
            .bind(kind)
            .bind(search.year)
            .fetch_one(&self.pool)
            .await?;
            let mut projects = rows
                .into_iter()
                .map(Project::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            let next_page_token = if projects.len() > size as usize {
                projects.truncate(size as usize);
                projects
                    .last()
                    .map(|p| encode_token(p.id))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            Ok(SearchPage {
                projects,
                next_page_token,
                totals,
            })
        };
        self.cache
            .current_or(PROJECTS_GENERATION, &key, CACHE_TTL, compute)
            .await
            .map(std::sync::Arc::unwrap_or_clone)
    }

    /// A project as the public sees it, with every change of its money,
    /// oldest first and without who made it.
    #[tracing::instrument(skip_all)]
    pub async fn public_project(&self, code: &str) -> Result<PublicProject, RegistryError> {
        let key = format!("registry:project:{code}");
        let compute = async {
            let project = self.project(code).await?;
            let rows: Vec<(DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
            "SELECT at, changes FROM project_versions WHERE project_id = $1 AND money ORDER BY version",
        )
        .bind(project.id)
        .fetch_all(&self.pool)
        .await?;
            let money_history = rows
                .into_iter()
                .map(|(at, changes)| {
                    let money: serde_json::Map<String, serde_json::Value> = changes
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(field, _)| MONEY_FIELDS.contains(&field.as_str()))
                        .map(|(field, change)| (field.clone(), change.clone()))
                        .collect();
                    MoneyChange {
                        at,
                        changes: serde_json::Value::Object(money),
                    }
                })
                .collect();
            Ok(PublicProject {
                project,
                money_history,
            })
        };
        self.cache
            .current_or(PROJECTS_GENERATION, &key, CACHE_TTL, compute)
            .await
            .map(std::sync::Arc::unwrap_or_clone)
    }
}
