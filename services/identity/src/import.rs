//! Importing persons from the files departments send: CSV in UTF-8 or
//! GBK/GB18030, one person a row. Every row is checked first; the file is
//! applied in one transaction only if all rows are valid.

use std::collections::{HashMap, HashSet};

use huimin_kit::{pii::IdNumber, problems::Problems};

use crate::{
    Identity, IdentityError,
    facts::households::{Member, record_memberships},
};

/// The columns of a persons file, by their Chinese headers.
const HOUSEHOLD: &str = "户编号";
const NAME: &str = "姓名";
const ID_NUMBER: &str = "身份证号";
const RELATION: &str = "与户主关系";
const VILLAGE: &str = "村代码";
const COLUMNS: [&str; 5] = [HOUSEHOLD, NAME, ID_NUMBER, RELATION, VILLAGE];

/// Relations to the head of household (与户主关系) a row may state.
pub const RELATIONS: &[&str] = &[
    "户主",
    "配偶",
    "子",
    "女",
    "儿媳",
    "女婿",
    "父母",
    "父亲",
    "母亲",
    "孙子女",
    "孙子",
    "孙女",
    "兄弟姐妹",
    "其他",
];

/// What a persons file is called in the summary of its problems.
const SUBJECT: &str = "文件";

/// One valid row, ready to store.
#[derive(Debug)]
pub struct PersonRow {
    pub household_code: String,
    pub name: String,
    pub id_number: IdNumber,
    pub relation: String,
    pub village_code: String,
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub persons: u64,
    pub households: u64,
    pub created: u64,
    pub updated: u64,
}

/// Parses and checks every row against the known villages; returns all rows,
/// or every problem found (row and column named).
pub fn parse_persons(
    file_name: &str,
    bytes: &[u8],
    villages: &HashSet<String>,
    limits: &huimin_kit::table::ImportLimits,
) -> Result<Vec<PersonRow>, IdentityError> {
    let table = huimin_kit::table::read_table(file_name, bytes, limits)
        .map_err(|problems| problems.report(SUBJECT))?;
    let index = locate_columns(&table, &COLUMNS).map_err(|problems| problems.report(SUBJECT))?;
    let mut problems = Problems::default();

    let mut rows = Vec::new();
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut household_village: HashMap<String, (String, usize)> = HashMap::new();
    for row in &table.rows {
        let line = row.line;
        let cell = |column: &str| {
            row.cells
                .get(index[column])
                .map(huimin_kit::table::plain_text)
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        if let Some(message) = row.cells.get(index[ID_NUMBER]).and_then(numeric_id_problem) {
            problems.add(line, ID_NUMBER, message);
            continue;
        }
        let (household_code, name, id_text, relation, village_code) = (
            cell(HOUSEHOLD),
            cell(NAME),
            cell(ID_NUMBER),
            cell(RELATION),
            cell(VILLAGE),
        );
        let problems_before = problems.total();

        if household_code.is_empty() || household_code.chars().count() > 40 {
            problems.add(line, HOUSEHOLD, "户编号不能为空，且不超过40个字符");
        }
        if name.is_empty() || name.chars().count() > 50 || name.chars().any(|c| c.is_ascii_digit())
        {
            problems.add(line, NAME, "姓名不能为空、不能含数字，且不超过50个字");
        }
        let id_number = match IdNumber::parse(&id_text) {
            Ok(id) => Some(id),
            Err(error) => {
                problems.add(line, ID_NUMBER, error.message_zh());
                None
            }
        };
        if let Some(id) = &id_number
            && let Some(first) = seen_ids.insert(id.expose().to_owned(), line)
        {
            problems.add(line, ID_NUMBER, format!("与第{first}行的身份证号重复"));
        }
        if !RELATIONS.contains(&relation.as_str()) {
            problems.add(
                line,
                RELATION,
                format!("应为以下之一：{}", RELATIONS.join("、")),
            );
        }
        if !villages.contains(&village_code) {
            problems.add(line, VILLAGE, "不是本县的村级行政区划代码（12位）");
        } else if let Some((other, first)) = household_village.get(&household_code) {
            if *other != village_code {
                problems.add(line, VILLAGE, format!("同一户在第{first}行登记为另一个村"));
            }
        } else {
            household_village.insert(household_code.clone(), (village_code.clone(), line));
        }

        if let (Some(id_number), true) = (id_number, problems.total() == problems_before) {
            rows.push(PersonRow {
                household_code,
                name,
                id_number,
                relation,
                village_code,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems.report(SUBJECT).into());
    }
    if rows.is_empty() {
        return Err(IdentityError::invalid("file", "文件中没有数据行"));
    }
    Ok(rows)
}

/// Finds each of `columns` among a table's headers (as [`huimin_kit::table::normalise_header`]
/// reads them, in any order): their positions, or a problem for every column missing.
pub fn locate_columns(
    table: &huimin_kit::table::Table,
    columns: &[&'static str],
) -> Result<HashMap<&'static str, usize>, Problems> {
    let mut index = HashMap::new();
    let mut problems = Problems::default();
    for &column in columns {
        match table
            .headers
            .iter()
            .position(|h| huimin_kit::table::normalise_header(h) == column)
        {
            Some(i) => {
                index.insert(column, i);
            }
            None => problems.add(table.header_line, column, format!("缺少列「{column}」")),
        }
    }
    problems.into_result(index)
}

/// The problem of an ID number typed as a number: a spreadsheet keeps only 15 digits
/// of one, so the number is lost.
pub fn numeric_id_problem(cell: &huimin_kit::table::Cell) -> Option<&'static str> {
    matches!(
        cell,
        huimin_kit::table::Cell::Float(_) | huimin_kit::table::Cell::Int(_)
    )
    .then_some("身份证号请以文本格式保存（数字格式会丢失末位）")
}

impl Identity {
    /// The 12-digit codes of all villages.
    pub async fn village_codes(&self) -> Result<HashSet<String>, IdentityError> {
        let codes: Vec<String> =
            sqlx::query_scalar("SELECT code FROM divisions WHERE level = 'village'")
                .fetch_all(&self.pool)
                .await?;
        Ok(codes.into_iter().collect())
    }

    /// Checks and applies a persons file: all rows or none.
    #[tracing::instrument(skip_all, fields(bytes = bytes.len()))]
    pub async fn import_persons(
        &self,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<ImportSummary, IdentityError> {
        let villages = self.village_codes().await?;
        // Decoding and checking up to 64 MB is CPU work: off the async runtime.
        let (file_name, bytes, limits) = (file_name.to_owned(), bytes.to_vec(), self.imports);
        let rows = tokio::task::spawn_blocking(move || {
            parse_persons(&file_name, &bytes, &villages, &limits)
        })
        .await
        .map_err(|e| IdentityError::internal(e.into()))??;
        let summary = self.store_persons(&rows).await?;
        tracing::info!(
            persons = summary.persons,
            created = summary.created,
            "persons imported"
        );
        Ok(summary)
    }

    async fn store_persons(&self, rows: &[PersonRow]) -> Result<ImportSummary, IdentityError> {
        let today = huimin_kit::clock::china_today();
        let mut tx = self.pool.begin().await?;
        // Births and household spans are person facts: their writers go one at a time.
        crate::facts::lock_for_writing(&mut tx).await?;
        let mut households: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.household_code.as_str(), r.village_code.as_str()))
            .collect();
        households.sort_unstable();
        households.dedup();
        let mut summary = ImportSummary {
            households: households.len() as u64,
            ..ImportSummary::default()
        };
        for chunk in households.chunks(1000) {
            let (codes, villages): (Vec<&str>, Vec<&str>) = chunk.iter().copied().unzip();
            sqlx::query(
                "INSERT INTO households (code, village_code)
                 SELECT * FROM UNNEST($1::text[], $2::text[])
                 ON CONFLICT (code) DO UPDATE SET village_code = EXCLUDED.village_code",
            )
            .bind(codes)
            .bind(villages)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in rows.chunks(1000) {
            let keys: Vec<Vec<u8>> = chunk
                .iter()
                .map(|r| self.pii.keyer.key_of(&r.id_number).as_bytes().to_vec())
                .collect();
            let sealed: Vec<Vec<u8>> = chunk
                .iter()
                .map(|r| {
                    let key = self.pii.keyer.key_of(&r.id_number);
                    self.pii.sealer.seal_id(&r.id_number, &key)
                })
                .collect();
            let masked: Vec<String> = chunk.iter().map(|r| r.id_number.masked()).collect();
            let names: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
            let genders: Vec<&str> = chunk
                .iter()
                .map(|r| {
                    if r.id_number.is_male() {
                        "male"
                    } else {
                        "female"
                    }
                })
                .collect();
            let births: Vec<chrono::NaiveDate> =
                chunk.iter().map(|r| r.id_number.birth_date()).collect();
            let households: Vec<&str> = chunk.iter().map(|r| r.household_code.as_str()).collect();
            let relations: Vec<&str> = chunk.iter().map(|r| r.relation.as_str()).collect();
            let villages: Vec<&str> = chunk.iter().map(|r| r.village_code.as_str()).collect();
            // xmax = 0 tells a freshly inserted row from an updated one.
            let written: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(
                "INSERT INTO persons (person_key, id_number_enc, id_number_masked, name, gender, birth_date,
                                      household_code, relation, village_code)
                 SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::date[],
                                      $7::text[], $8::text[], $9::text[])
                 ON CONFLICT (person_key) DO UPDATE SET
                     name = EXCLUDED.name, household_code = EXCLUDED.household_code,
                     relation = EXCLUDED.relation, village_code = EXCLUDED.village_code, updated_at = now()
                 RETURNING id, person_key, (xmax = 0)",
            )
            .bind(&keys)
            .bind(sealed)
            .bind(masked)
            .bind(names)
            .bind(genders)
            .bind(&births)
            .bind(&households)
            .bind(&relations)
            .bind(villages)
            .fetch_all(&mut *tx)
            .await?;
            let created = written.iter().filter(|(_, _, new)| *new).count() as u64;
            summary.created += created;
            summary.updated += written.len() as u64 - created;
            let ids: HashMap<&[u8], i64> = written
                .iter()
                .map(|(id, key, _)| (key.as_slice(), *id))
                .collect();
            let members: Vec<Member<'_>> = chunk
                .iter()
                .zip(&keys)
                .zip(&births)
                .filter_map(|((row, key), birth_date)| {
                    Some(Member {
                        person_id: *ids.get(key.as_slice())?,
                        household_code: &row.household_code,
                        relation: &row.relation,
                        birth_date: *birth_date,
                    })
                })
                .collect();
            record_memberships(&mut tx, &members, today).await?;
        }
        tx.commit().await?;
        summary.persons = rows.len() as u64;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use huimin_kit::error::CoreError;

    use super::*;
    use huimin_kit::table::ImportLimits;

    fn villages() -> HashSet<String> {
        ["450923100201".to_owned()].into_iter().collect()
    }

    const HEADER: &str = "户编号,姓名,身份证号,与户主关系,村代码\n";

    #[test]
    fn good_rows_parse() {
        let text = format!("{HEADER}H1,张三,11010519491231002X,户主,450923100201\n");
        let rows = parse_persons(
            "persons.csv",
            text.as_bytes(),
            &villages(),
            &ImportLimits::default(),
        )
        .expect("valid file");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "张三");
    }

    #[test]
    fn every_bad_cell_is_named_by_row_and_column() {
        let text = format!(
            "{HEADER}H1,张三,110105194912310021,户主,450923100201\nH1,李四,11010519491231002X,表哥,450923999999\n"
        );
        let Err(IdentityError::Core(CoreError::Invalid { violations, .. })) = parse_persons(
            "persons.csv",
            text.as_bytes(),
            &villages(),
            &ImportLimits::default(),
        ) else {
            panic!("expected a report");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["第2行/身份证号", "第3行/与户主关系", "第3行/村代码"]
        );
        assert_eq!(violations[0].description, "身份证号校验位错误，请核对");
    }

    #[test]
    fn duplicate_id_number_names_the_first_row() {
        let text = format!(
            "{HEADER}H1,张三,11010519491231002X,户主,450923100201\nH2,张三,11010519491231002X,户主,450923100201\n"
        );
        let Err(IdentityError::Core(CoreError::Invalid { violations, .. })) = parse_persons(
            "persons.csv",
            text.as_bytes(),
            &villages(),
            &ImportLimits::default(),
        ) else {
            panic!("expected a report");
        };
        assert_eq!(violations[0].description, "与第2行的身份证号重复");
    }

    #[test]
    fn missing_column_is_reported() {
        let Err(IdentityError::Core(CoreError::Invalid { violations, .. })) = parse_persons(
            "persons.csv",
            "姓名,身份证号\n".as_bytes(),
            &villages(),
            &ImportLimits::default(),
        ) else {
            panic!("expected a report");
        };
        assert!(violations.iter().any(|v| v.description.contains("户编号")));
    }

    #[test]
    fn gbk_files_parse() {
        let text = format!("{HEADER}H1,张三,11010519491231002X,户主,450923100201\n");
        let (bytes, _, _) = encoding_rs::GBK.encode(&text);
        let rows = parse_persons("persons.csv", &bytes, &villages(), &ImportLimits::default())
            .expect("gbk parses");
        assert_eq!(rows[0].name, "张三");
    }
}
