//! Importing a project file (项目台账): CSV in UTF-8 or GBK, or XLSX, one
//! project a row. Every row is checked as a created project would be — and
//! against the caller's scope, identity's villages and the codes already
//! registered — and the file is applied in one transaction or not at all.
//! Imported projects start as planned, with nothing disbursed.

use std::collections::HashMap;

use huimin_kit::{
    auth::Caller,
    money::Fen,
    problems::{Problems, ROW},
    table::{Cell, amount_text, normalise_header, plain_text, read_table},
};

use crate::{
    OUTBOX, Registry, RegistryError,
    domain::{Details, Funding, Kind, may_write, parse_date, valid_code},
    projects::{insert, today},
};

/// The columns of a project file: header, the [`Details`] field its problems
/// are reported under, required, other headers used for it.
const COLUMNS: [(&str, &str, bool, &[&str]); 18] = [
    ("项目编号", "code", true, &["项目代码"]),
    ("项目名称", "name", true, &[]),
    ("项目类型", "kind", true, &["类型"]),
    ("乡镇代码", "town_code", true, &[]),
    ("村代码", "village_code", false, &[]),
    ("年度", "year", true, &["项目年度"]),
    ("中央资金", "funding", false, &[]),
    ("自治区资金", "funding", false, &["区级资金"]),
    ("市级资金", "funding", false, &[]),
    ("县级资金", "funding", false, &[]),
    ("其他资金", "funding", false, &[]),
    ("批复金额", "approved_fen", true, &["批复资金"]),
    ("承建单位", "contractor", false, &[]),
    ("责任单位", "department", true, &[]),
    ("责任人", "officer", true, &[]),
    ("计划开工日期", "planned_start", false, &["计划开工"]),
    ("计划完工日期", "planned_end", false, &["计划完工"]),
    ("受益户数", "beneficiary_households", false, &[]),
];

/// The column a [`Details::check`] problem is reported under.
fn column_of(field: &str) -> &'static str {
    match field {
        "funding" | "approved_fen" => "批复金额",
        other => COLUMNS
            .iter()
            .find(|(_, f, ..)| *f == other)
            .map_or(ROW, |(header, ..)| header),
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub created: u64,
    pub approved_fen: i64,
}

/// A row that passed the file-level checks.
struct Row {
    line: usize,
    code: String,
    details: Details,
}

/// What a project file is called in the summary of its problems.
const SUBJECT: &str = "项目表";

fn into_error(problems: Problems) -> RegistryError {
    problems.report(SUBJECT).into()
}

impl Registry {
    /// Checks and applies a project file for `caller`.
    #[tracing::instrument(skip_all, fields(staff = %caller.sub, bytes = bytes.len()))]
    pub async fn import(
        &self,
        caller: &Caller,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<ImportOutcome, RegistryError> {
        let (name, limits) = (file_name.to_owned(), self.imports);
        let table = tokio::task::spawn_blocking(move || read_table(&name, &bytes, &limits))
            .await
            .map_err(|e| RegistryError::internal(e.into()))?
            .map_err(into_error)?;
        let mut problems = Problems::default();
        let rows = read_rows(caller, table, &mut problems)?;
        if rows.is_empty() && problems.total() == 0 {
            return Err(RegistryError::invalid("文件", "文件中没有数据行"));
        }
        let places: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.details.town_code.as_str(),
                    r.details.village_code.as_deref(),
                )
            })
            .collect();
        for (index, unknown) in self.unknown_places(&places).await? {
            let column = match unknown {
                crate::divisions::UnknownPlace::Town => "乡镇代码",
                crate::divisions::UnknownPlace::Village => "村代码",
            };
            problems.add(rows[index].line, column, unknown.message_zh());
        }
        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT code FROM projects WHERE code = ANY($1)")
                .bind(&codes)
                .fetch_all(&mut *tx)
                .await?;
        for row in rows.iter().filter(|r| existing.contains(&r.code)) {
            problems.add(row.line, "项目编号", "项目编号已存在");
        }
        problems.into_result(()).map_err(into_error)?;

        let mut outcome = ImportOutcome {
            created: 0,
            approved_fen: 0,
        };
        for row in &rows {
            insert(&mut tx, caller, &row.code, &row.details, "imported").await?;
            outcome.created += 1;
            outcome.approved_fen += row.details.approved_fen;
        }
        tx.commit().await?;
        tracing::info!(created = outcome.created, "projects imported");
        self.changed().await;
        Ok(outcome)
    }
}

/// File-level checks of each row; rows that pass become [`Row`]s.
fn read_rows(
    caller: &Caller,
    table: huimin_kit::table::Table,
    problems: &mut Problems,
) -> Result<Vec<Row>, RegistryError> {
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let mut header_problems = Problems::default();
    for (index, header) in table.headers.iter().enumerate() {
        let header = normalise_header(header);
        if let Some((name, ..)) = COLUMNS
            .iter()
            .find(|(name, _, _, aliases)| *name == header || aliases.contains(&header.as_str()))
            && positions.insert(name, index).is_some()
        {
            header_problems.add(
                table.header_line,
                name,
                format!("有多列都对应「{name}」，请只保留一列"),
            );
        }
    }
    for (name, _, required, _) in COLUMNS {
        if required && !positions.contains_key(name) {
            header_problems.add(table.header_line, name, format!("缺少列「{name}」"));
        }
    }
    header_problems.into_result(()).map_err(into_error)?;

    let today = today();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::new();
    for raw in table.rows {
        let line = raw.line;
        let before = problems.total();
        let text = |column: &str| -> String {
            positions
                .get(column)
                .and_then(|&i| raw.cells.get(i))
                .map(|cell| match cell {
                    Cell::Float(value) => amount_text(*value).trim_end_matches(".00").to_owned(),
                    other => plain_text(other),
                })
                .unwrap_or_default()
        };
        let fen = |column: &str, problems: &mut Problems| -> i64 {
            let cell = text(column);
            if cell.is_empty() {
                return 0;
            }
            Fen::parse_yuan(&cell)
                .map(|f| f.fen())
                .map_err(|e| problems.add(line, column, e.message_zh()))
                .unwrap_or(0)
        };
        let date = |column: &str, problems: &mut Problems| {
            parse_date(&text(column))
                .map_err(|m| problems.add(line, column, m))
                .unwrap_or(None)
        };
        let code = text("项目编号");
        if !valid_code(&code) {
            problems.add(line, "项目编号", "项目编号应为1至40位字母、数字、-或_");
        } else if let Some(first) = first_line.insert(code.clone(), line) {
            problems.add(line, "项目编号", format!("与第{first}行项目编号重复"));
        }
        let kind = text("项目类型")
            .parse::<Kind>()
            .map_err(|m| problems.add(line, "项目类型", m))
            .unwrap_or(Kind::Other);
        let year = text("年度")
            .trim_end_matches(['年', '度'])
            .parse::<i32>()
            .unwrap_or(0);
        let households = text("受益户数");
        let households = if households.is_empty() {
            0
        } else {
            households.parse::<i32>().unwrap_or(-1)
        };
        let village = text("村代码");
        let details = Details {
            name: text("项目名称"),
            kind,
            town_code: text("乡镇代码"),
            village_code: (!village.is_empty()).then_some(village),
            year,
            funding: Funding {
                central_fen: fen("中央资金", problems),
                region_fen: fen("自治区资金", problems),
                city_fen: fen("市级资金", problems),
                county_fen: fen("县级资金", problems),
                other_fen: fen("其他资金", problems),
            },
            approved_fen: fen("批复金额", problems),
            disbursed_fen: 0,
            contractor: text("承建单位"),
            department: text("责任单位"),
            officer: text("责任人"),
            planned_start: date("计划开工日期", problems),
            planned_end: date("计划完工日期", problems),
            actual_start: None,
            actual_end: None,
            beneficiary_households: households,
            milestones: Vec::new(),
        };
        if problems.total() == before {
            for violation in details.check(today) {
                problems.add(line, column_of(&violation.field), violation.description);
            }
        }
        if problems.total() == before && !may_write(caller, &details) {
            problems.add(line, "乡镇代码", "该项目不在您的管辖范围内");
        }
        if problems.total() == before {
            rows.push(Row {
                line,
                code,
                details,
            });
        }
    }
    Ok(rows)
}

/// Bounded fuzzing of the project file reader: any text under a project header ends in
/// rows or problems, never a panic. A long run is
/// `PROPTEST_CASES=1000000 cargo test -p huimin-registry fuzz_projects` (nextest stops a test at 180 s).
#[cfg(test)]
mod fuzz {
    use huimin_kit::auth::Role;
    use proptest::prelude::*;

    use super::*;

    const HEADER: &str = "项目编号,项目名称,项目类型,乡镇代码,村代码,年度,中央资金（元）,批复金额（元）,承建单位,责任单位,责任人,计划开工日期,计划完工日期,受益户数";

    proptest! {
        #[test]
        fn fuzz_projects_reader(
            body in "[,\n\r\" 0-9a-zX.\\-/饮水工程道路（元）*]{0,400}",
            raw in proptest::collection::vec(any::<u8>(), 0..300),
            use_raw in any::<bool>(),
        ) {
            let bytes = if use_raw { raw } else { format!("{HEADER}\n{body}").into_bytes() };
            let caller = Caller {
                sub: "fuzz".to_owned(),
                role: Role::Admin,
                scope: None,
                iat: 0,
                exp: i64::MAX,
                aud: Vec::new(),
                jti: String::new(),
            };
            let limits = huimin_kit::table::ImportLimits {
                max_rows: 50,
                max_columns: 20,
                ..Default::default()
            };
            if let Ok(table) = read_table("p.csv", &bytes, &limits) {
                let mut problems = Problems::default();
                let _ = read_rows(&caller, table, &mut problems);
            }
        }
    }
}
