//! The provincial export: projects in id order, in batches, resumable from
//! the last batch's cursor. Rows are the projects' current state; a follower
//! keeps up with later changes through `WatchEvents`. Ids are handed out
//! under the writers' lock, so a resumed export misses no project created
//! while it ran. Read from the replica when there is one (a prefix of the
//! primary's commits, so a batch there can only lag, never skip).

use crate::{
    Registry, RegistryError,
    projects::{PROJECT_COLUMNS, Project, ProjectRow},
};

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub town: Option<String>,
    pub year: Option<i32>,
}

impl Registry {
    /// One batch of the export after `cursor`.
    pub async fn export_batch(
        &self,
        filter: &ExportFilter,
        cursor: i64,
        size: i64,
    ) -> Result<Vec<Project>, RegistryError> {
        let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects
             WHERE id > $1 AND ($2::text IS NULL OR town_code = $2) AND ($3::int IS NULL OR year = $3)
             ORDER BY id LIMIT $4"
        ))
        .bind(cursor)
        .bind(&filter.town)
        .bind(filter.year)
        .bind(size)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(Project::try_from).collect()
    }
}
