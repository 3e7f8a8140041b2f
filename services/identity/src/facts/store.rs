//! Applying a checked dataset file: persons matched against the register, rows of
//! persons it does not hold kept out and counted, and the rest written all at once —
//! new facts inserted, facts with an existing natural key corrected in place when
//! something changed — with the file recorded in `fact_imports`.

use std::collections::HashMap;

use huimin_kit::{pii::IdNumber, problems::Problems};
use sha2::{Digest as _, Sha256};

use super::{
    DatasetKind,
    parse::{FactRow, SUBJECT, parse_facts},
};
use crate::{Identity, IdentityError};

/// A file to import: its kind, where it came from, who sends it.
#[derive(Debug, Clone, Copy)]
pub struct FactFile<'a> {
    pub kind: DatasetKind,
    /// The department that sent it (来源部门), e.g. 博白县公安局.
    pub source_department: &'a str,
    pub file_name: &'a str,
    pub bytes: &'a [u8],
    /// The staff member (or tool) importing it.
    pub imported_by: &'a str,
}

/// What an import did, or what the earlier import of the same file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct FactImport {
    pub import_id: i64,
    pub rows: i32,
    pub inserted: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub not_in_register: i32,
    /// The file had been imported as this kind before; nothing was written.
    #[sqlx(default)]
    pub duplicate: bool,
}

/// A registered person as a file is matched against.
#[derive(sqlx::FromRow)]
struct Registered {
    id: i64,
    person_key: Vec<u8>,
    name: String,
}

/// A file every row of which is good, its persons found in the register.
struct Checked<'a> {
    source: &'a str,
    fingerprint: [u8; 32],
    /// Data rows in the file.
    rows: i32,
    /// The rows to write: those whose persons are registered.
    resolved: Vec<Resolved<'a>>,
    not_in_register: i32,
}

/// A row ready to write.
struct Resolved<'a> {
    person_id: i64,
    row: &'a FactRow,
    attrs: String,
}

impl Identity {
    /// Checks and applies a reference dataset file: every row valid and matched, or
    /// nothing written. Idempotent per file and kind.
    #[tracing::instrument(skip_all, fields(kind = file.kind.as_str(), bytes = file.bytes.len()))]
    pub async fn import_facts(&self, file: FactFile<'_>) -> Result<FactImport, IdentityError> {
        let source = file.source_department.trim();
        if source.is_empty() || source.chars().count() > 100 {
            return Err(IdentityError::invalid(
                "source_department",
                "来源部门不能为空，且不超过100个字",
            ));
        }
        let fingerprint: [u8; 32] = Sha256::digest(file.bytes).into();
        if let Some(earlier) = self.earlier_import(&fingerprint, file.kind).await? {
            return Ok(earlier);
        }
        let rows = self.parse_file(&file).await?;
        let (resolved, not_in_register) = self.match_register(file.kind, &rows).await?;
        let checked = Checked {
            source,
            fingerprint,
            rows: count(rows.len()),
            resolved,
            not_in_register,
        };
        let summary = self.write_import(&file, checked).await?;
        tracing::info!(
            import_id = summary.import_id,
            rows = summary.rows,
            inserted = summary.inserted,
            updated = summary.updated,
            unchanged = summary.unchanged,
            not_in_register = summary.not_in_register,
            duplicate = summary.duplicate,
            "facts imported"
        );
        Ok(summary)
    }

    /// Every row of the file, checked on its own (no register yet).
    async fn parse_file(&self, file: &FactFile<'_>) -> Result<Vec<FactRow>, IdentityError> {
        let villages = self.village_codes().await?;
        let today = huimin_kit::clock::china_today();
        // Decoding and checking up to 64 MB is CPU work: off the async runtime.
        let (kind, name, bytes, limits) = (
            file.kind,
            file.file_name.to_owned(),
            file.bytes.to_vec(),
            self.imports,
        );
        tokio::task::spawn_blocking(move || {
            parse_facts(kind, &name, &bytes, &villages, today, &limits)
        })
        .await
        .map_err(|e| IdentityError::internal(e.into()))?
    }

    /// Records the file and writes its facts, in one transaction under the facts lock.
    async fn write_import(
        &self,
        file: &FactFile<'_>,
        checked: Checked<'_>,
    ) -> Result<FactImport, IdentityError> {
        let kind = file.kind;
        let mut tx = self.pool.begin().await?;
        super::lock_for_writing(&mut tx).await?;
        // Under the lock: the same file sent twice at once is written once.
        if let Some(earlier) = earlier_import(&mut tx, &checked.fingerprint, kind).await? {
            return Ok(earlier);
        }
        let import_id: i64 = sqlx::query_scalar(
            "INSERT INTO fact_imports (kind, source_department, file_name, fingerprint, imported_by,
                                       rows_total, inserted, updated, unchanged, not_in_register)
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, $7) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(checked.source)
        .bind(file.file_name)
        .bind(checked.fingerprint.as_slice())
        .bind(file.imported_by)
        .bind(checked.rows)
        .bind(checked.not_in_register)
        .fetch_one(&mut *tx)
        .await?;
        let mut summary = FactImport {
            import_id,
            rows: checked.rows,
            not_in_register: checked.not_in_register,
            ..FactImport::default()
        };
        for chunk in checked.resolved.chunks(5000) {
            let inserted = upsert(&mut tx, kind, checked.source, import_id, chunk).await?;
            let new = inserted.iter().filter(|&&new| new).count();
            summary.inserted += count(new);
            summary.updated += count(inserted.len() - new);
        }
        summary.unchanged = count(checked.resolved.len()) - summary.inserted - summary.updated;
        sqlx::query(
            "UPDATE fact_imports SET inserted = $2, updated = $3, unchanged = $4 WHERE id = $1",
        )
        .bind(import_id)
        .bind(summary.inserted)
        .bind(summary.updated)
        .bind(summary.unchanged)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    async fn earlier_import(
        &self,
        fingerprint: &[u8; 32],
        kind: DatasetKind,
    ) -> Result<Option<FactImport>, IdentityError> {
        let mut conn = self.pool.acquire().await?;
        earlier_import(&mut conn, fingerprint, kind).await
    }

    /// Each row's person (and for cadre_relative, the cadre) in the register: rows
    /// whose persons are all registered, with the count of those that are not. A name
    /// that is not the register's is a problem of its row.
    async fn match_register<'a>(
        &self,
        kind: DatasetKind,
        rows: &'a [FactRow],
    ) -> Result<(Vec<Resolved<'a>>, i32), IdentityError> {
        let keyer = &self.pii.keyer;
        let key = |id: &IdNumber| keyer.key_of(id).as_bytes().to_vec();
        let mut keys: Vec<Vec<u8>> = rows.iter().map(|r| key(&r.id_number)).collect();
        keys.extend(rows.iter().filter_map(|r| r.cadre.as_ref()).map(key));
        keys.sort_unstable();
        keys.dedup();
        let mut registered: HashMap<Vec<u8>, Registered> = HashMap::new();
        for chunk in keys.chunks(10_000) {
            let found: Vec<Registered> = sqlx::query_as(
                "SELECT id, person_key, name FROM persons WHERE person_key = ANY($1)",
            )
            .bind(chunk)
            .fetch_all(&self.pool)
            .await?;
            registered.extend(found.into_iter().map(|p| (p.person_key.clone(), p)));
        }

        let name_column = super::parse::name_column(kind);
        let mut problems = Problems::default();
        let mut resolved = Vec::with_capacity(rows.len());
        let mut not_in_register = 0;
        for row in rows {
            let person = registered.get(&key(&row.id_number));
            let cadre = row.cadre.as_ref().map(|c| registered.get(&key(c)));
            let (Some(person), Some(Some(_)) | None) = (person, &cadre) else {
                not_in_register += 1;
                continue;
            };
            if person.name != row.name {
                problems.add(row.line, name_column, "与户籍登记的姓名不一致");
                continue;
            }
            let mut attrs = row.attrs.clone();
            if let Some(Some(cadre)) = cadre {
                attrs.insert("cadre_key".to_owned(), hex::encode(&cadre.person_key));
            }
            resolved.push(Resolved {
                person_id: person.id,
                row,
                attrs: serde_json::to_string(&attrs)
                    .map_err(|e| IdentityError::internal(e.into()))?,
            });
        }
        if !problems.is_empty() {
            return Err(problems.report(SUBJECT).into());
        }
        Ok((resolved, not_in_register))
    }
}

async fn earlier_import(
    conn: &mut sqlx::PgConnection,
    fingerprint: &[u8; 32],
    kind: DatasetKind,
) -> Result<Option<FactImport>, IdentityError> {
    let earlier: Option<FactImport> = sqlx::query_as(
        "SELECT id AS import_id, rows_total AS rows, inserted, updated, unchanged, not_in_register,
                true AS duplicate
         FROM fact_imports WHERE fingerprint = $1 AND kind = $2",
    )
    .bind(fingerprint.as_slice())
    .bind(kind.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(earlier)
}

/// Inserts new facts and corrects existing ones (same natural key) where something
/// changed; answers, per row written, whether it was new. Unchanged rows are not
/// written, so their version stays.
async fn upsert(
    tx: &mut sqlx::PgConnection,
    kind: DatasetKind,
    source: &str,
    import_id: i64,
    rows: &[Resolved<'_>],
) -> Result<Vec<bool>, IdentityError> {
    let persons: Vec<i64> = rows.iter().map(|r| r.person_id).collect();
    let since: Vec<chrono::NaiveDate> = rows.iter().map(|r| r.row.since).collect();
    let until: Vec<Option<chrono::NaiveDate>> = rows.iter().map(|r| r.row.until).collect();
    let detail: Vec<&str> = rows.iter().map(|r| r.row.detail.as_str()).collect();
    let attrs: Vec<&str> = rows.iter().map(|r| r.attrs.as_str()).collect();
    // xmax = 0 tells a freshly inserted row from an updated one. The source counts as
    // no change: the same fact from another department is still the same fact.
    let inserted: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO person_facts AS f (person_id, kind, since, until, detail, attrs, source, import_id)
         SELECT t.person_id, $6, t.since, t.until, t.detail, t.attrs::jsonb, $7, $8
         FROM UNNEST($1::bigint[], $2::date[], $3::date[], $4::text[], $5::text[])
              AS t (person_id, since, until, detail, attrs)
         ON CONFLICT (person_id, kind, natural_key) DO UPDATE SET
             since = EXCLUDED.since, until = EXCLUDED.until, detail = EXCLUDED.detail,
             attrs = EXCLUDED.attrs, source = EXCLUDED.source, import_id = EXCLUDED.import_id
         WHERE (f.since, f.until, f.detail, f.attrs)
               IS DISTINCT FROM (EXCLUDED.since, EXCLUDED.until, EXCLUDED.detail, EXCLUDED.attrs)
         RETURNING (xmax = 0)",
    )
    .bind(persons)
    .bind(since)
    .bind(until)
    .bind(detail)
    .bind(attrs)
    .bind(kind.as_str())
    .bind(source)
    .bind(import_id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(inserted)
}

/// A row count as stored (files hold far fewer than 2^31 rows: see `ImportLimits`).
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
