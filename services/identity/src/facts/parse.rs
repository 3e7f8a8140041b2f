//! Reading a reference dataset file (比对数据) of one kind: columns found by their Chinese
//! headers in any order, every cell checked, every problem named by row and column. Pure:
//! whether a person is in the register is the store's question (`store.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use huimin_kit::{
    pii::IdNumber,
    problems::Problems,
    table::{Cell, ImportLimits, TableRow},
};

use super::DatasetKind;
use crate::{IdentityError, import};

/// What a dataset file is called in the summary of its problems.
pub const SUBJECT: &str = "比对数据文件";

const NAME: &str = "姓名";
const ID_NUMBER: &str = "身份证号";

/// The columns of one kind's file, and which of them say who and when.
struct Spec {
    /// Every header, in the order the docs list them.
    headers: &'static [&'static str],
    /// The person's name and ID number (for cadre_relative: the relative's).
    name: &'static str,
    id: &'static str,
    /// The start date; cadre_relative has none (see [`parse_facts`]).
    since: Option<&'static str>,
    /// The end date, empty while the fact holds.
    until: Option<&'static str>,
}

fn spec(kind: DatasetKind) -> Spec {
    let person = |headers, since, until| Spec {
        headers,
        name: NAME,
        id: ID_NUMBER,
        since: Some(since),
        until,
    };
    match kind {
        DatasetKind::Deceased => {
            person(&[NAME, ID_NUMBER, "死亡日期", "信息来源"], "死亡日期", None)
        }
        DatasetKind::PublicEmployee => person(
            &[NAME, ID_NUMBER, "工作单位", "起始日期", "终止日期"],
            "起始日期",
            Some("终止日期"),
        ),
        DatasetKind::VillageCadre => person(
            &[NAME, ID_NUMBER, "村代码", "职务", "任职起始", "任职终止"],
            "任职起始",
            Some("任职终止"),
        ),
        DatasetKind::CadreRelative => Spec {
            headers: &["干部身份证号", "亲属姓名", "亲属身份证号", "关系"],
            name: "亲属姓名",
            id: "亲属身份证号",
            since: None,
            until: None,
        },
        DatasetKind::VehicleOwner => person(
            &[NAME, ID_NUMBER, "号牌号码", "车辆类型", "登记日期"],
            "登记日期",
            None,
        ),
        DatasetKind::CompanyOwner => person(
            &[
                NAME,
                ID_NUMBER,
                "企业名称",
                "统一社会信用代码",
                "身份",
                "成立日期",
            ],
            "成立日期",
            None,
        ),
        DatasetKind::PropertyOwner => person(
            &[NAME, ID_NUMBER, "坐落", "建筑面积", "登记日期"],
            "登记日期",
            None,
        ),
        DatasetKind::MovedOut => person(&[NAME, ID_NUMBER, "迁出日期", "迁往地"], "迁出日期", None),
    }
}

/// Every header a file of `kind` must have, in the order the docs list them.
pub fn headers(kind: DatasetKind) -> &'static [&'static str] {
    spec(kind).headers
}

/// The column that names the person a `kind` fact is about.
pub fn name_column(kind: DatasetKind) -> &'static str {
    spec(kind).name
}

/// One valid row, ready to match against the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRow {
    /// The spreadsheet row, for problems found later.
    pub line: usize,
    /// The person the fact is about (for cadre_relative, the relative).
    pub id_number: IdNumber,
    /// Their name as the file gives it; must be the register's.
    pub name: String,
    /// cadre_relative: the cadre (their key goes into `attrs` once known).
    pub cadre: Option<IdNumber>,
    pub since: NaiveDate,
    pub until: Option<NaiveDate>,
    /// A short Chinese description, as the department's register gives it.
    pub detail: String,
    /// The kind's attributes under the stream's keys (`cadre_key` is added by the store).
    pub attrs: BTreeMap<String, String>,
}

/// Parses and checks every row of a `kind` file; returns all rows, or every problem
/// found (row and column named, never a cell's content). `villages` are the county's
/// 12-digit village codes (for 村代码); `today` bounds the dates of things that happened.
///
/// cadre_relative rows carry no date: the relation is dated from the relative's birth
/// (from the ID number), and rules date the cadre's service by the cadre's own facts.
pub fn parse_facts(
    kind: DatasetKind,
    file_name: &str,
    bytes: &[u8],
    villages: &HashSet<String>,
    today: NaiveDate,
    limits: &ImportLimits,
) -> Result<Vec<FactRow>, IdentityError> {
    let table = huimin_kit::table::read_table(file_name, bytes, limits)
        .map_err(|problems| problems.report(SUBJECT))?;
    let index = import::locate_columns(&table, headers(kind))
        .map_err(|problems| problems.report(SUBJECT))?;
    let spec = spec(kind);
    let mut problems = Problems::default();
    let mut rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in &table.rows {
        let mut cells = Cells {
            row,
            index: &index,
            problems: &mut problems,
        };
        let before = cells.problems.total();
        let parsed = read_row(kind, &spec, &mut cells, villages, today);
        if cells.problems.total() != before {
            continue;
        }
        let Some(fact) = parsed else { continue };
        // The fact's natural key within the file: two rows that would be one fact.
        let key = natural_key(kind, &fact);
        if let Some(first) = seen.insert(key, row.line) {
            problems.add(row.line, spec.id, format!("与第{first}行是同一条记录"));
            continue;
        }
        rows.push(fact);
    }
    if !problems.is_empty() {
        return Err(problems.report(SUBJECT).into());
    }
    if rows.is_empty() {
        return Err(IdentityError::invalid("file", "文件中没有数据行"));
    }
    Ok(rows)
}

/// As the store's natural key (migration 0023), with the ID number for the person.
fn natural_key(kind: DatasetKind, fact: &FactRow) -> String {
    let id = fact.id_number.expose();
    let attr = |key: &str| fact.attrs.get(key).map_or("", String::as_str);
    let key = match kind {
        DatasetKind::Deceased => return id.to_owned(),
        DatasetKind::PublicEmployee => attr("employer").to_owned(),
        DatasetKind::VillageCadre => format!("{}|{}", attr("village_code"), attr("post")),
        DatasetKind::CadreRelative => fact
            .cadre
            .as_ref()
            .map_or(String::new(), |c| c.expose().to_owned()),
        DatasetKind::VehicleOwner => attr("plate").to_owned(),
        DatasetKind::CompanyOwner => attr("credit_code").to_owned(),
        DatasetKind::PropertyOwner => attr("location").to_owned(),
        DatasetKind::MovedOut => attr("destination").to_owned(),
    };
    format!("{id}|{}|{key}", fact.since)
}

/// One row's cells by column, and the file's problems.
struct Cells<'a> {
    row: &'a TableRow,
    index: &'a HashMap<&'static str, usize>,
    problems: &'a mut Problems,
}

impl Cells<'_> {
    fn cell(&self, column: &str) -> Option<&Cell> {
        self.index.get(column).and_then(|&i| self.row.cells.get(i))
    }

    fn text(&self, column: &str) -> String {
        self.cell(column)
            .map(huimin_kit::table::plain_text)
            .unwrap_or_default()
    }

    fn problem(&mut self, column: &str, message: impl Into<String>) {
        self.problems.add(self.row.line, column, message);
    }

    /// A text of 1 to `max` characters.
    fn required(&mut self, column: &str, max: usize) -> Option<String> {
        let text = self.text(column);
        if text.is_empty() || text.chars().count() > max {
            self.problem(column, format!("{column}不能为空，且不超过{max}个字"));
            return None;
        }
        Some(text)
    }

    fn name(&mut self, column: &str) -> Option<String> {
        let name = self.text(column);
        if name.is_empty() || name.chars().count() > 50 || name.chars().any(|c| c.is_ascii_digit())
        {
            self.problem(
                column,
                format!("{column}不能为空、不能含数字，且不超过50个字"),
            );
            return None;
        }
        Some(name)
    }

    fn id_number(&mut self, column: &str) -> Option<IdNumber> {
        if let Some(message) = self.cell(column).and_then(import::numeric_id_problem) {
            self.problem(column, message);
            return None;
        }
        match IdNumber::parse(&self.text(column)) {
            Ok(id) => Some(id),
            Err(error) => {
                self.problem(column, error.message_zh());
                None
            }
        }
    }

    /// A date, or `None` (with no problem) when the cell is empty and `optional`.
    fn date(&mut self, column: &str, optional: bool) -> Result<Option<NaiveDate>, ()> {
        match self.cell(column).map(parse_date).unwrap_or(Ok(None)) {
            Ok(None) if !optional => {
                self.problem(column, format!("{column}不能为空"));
                Err(())
            }
            Ok(date) => Ok(date),
            Err(message) => {
                self.problem(column, message);
                Err(())
            }
        }
    }
}

fn read_row(
    kind: DatasetKind,
    spec: &Spec,
    cells: &mut Cells<'_>,
    villages: &HashSet<String>,
    today: NaiveDate,
) -> Option<FactRow> {
    let name = cells.name(spec.name);
    let id_number = cells.id_number(spec.id);
    let since = match spec.since {
        Some(column) => match cells.date(column, false) {
            Ok(Some(date)) if date > today => {
                cells.problem(column, format!("{column}晚于今天"));
                None
            }
            Ok(date) => date,
            Err(()) => None,
        },
        None => id_number.as_ref().map(IdNumber::birth_date),
    };
    let until = match spec.until {
        Some(column) => match (cells.date(column, true), since) {
            (Ok(Some(until)), Some(since)) if until < since => {
                let start = spec.since.unwrap_or_default();
                cells.problem(column, format!("{column}早于{start}"));
                None
            }
            (Ok(until), _) => until,
            (Err(()), _) => None,
        },
        None => None,
    };
    let mut attrs = BTreeMap::new();
    let mut cadre = None;
    let mut put = |key: &str, value: String| {
        attrs.insert(key.to_owned(), value);
    };
    let detail = match kind {
        DatasetKind::Deceased => {
            let source = cells.text("信息来源");
            if source.chars().count() > 100 {
                cells.problem("信息来源", "信息来源不超过100个字");
            }
            put("source_text", source.clone());
            source
        }
        DatasetKind::PublicEmployee => {
            let employer = cells.required("工作单位", 100).unwrap_or_default();
            put("employer", employer.clone());
            employer
        }
        DatasetKind::VillageCadre => {
            let village = cells.text("村代码");
            if !villages.contains(&village) {
                cells.problem("村代码", "不是本县的村级行政区划代码（12位）");
            }
            let post = cells.required("职务", 50).unwrap_or_default();
            put("village_code", village);
            put("post", post.clone());
            post
        }
        DatasetKind::CadreRelative => {
            cadre = cells.id_number("干部身份证号");
            if let (Some(cadre), Some(relative)) = (&cadre, &id_number)
                && cadre == relative
            {
                cells.problem("亲属身份证号", "与干部身份证号相同");
            }
            let relation = cells.required("关系", 20).unwrap_or_default();
            put("relation", relation.clone());
            relation
        }
        DatasetKind::VehicleOwner => {
            let plate = cells.required("号牌号码", 20).unwrap_or_default();
            let vehicle_type = cells.required("车辆类型", 30).unwrap_or_default();
            let detail = format!("{vehicle_type} {plate}");
            put("plate", plate);
            put("vehicle_type", vehicle_type);
            detail
        }
        DatasetKind::CompanyOwner => {
            let company = cells.required("企业名称", 100).unwrap_or_default();
            let code = cells.text("统一社会信用代码").to_uppercase();
            if !credit_code_shape(&code) {
                cells.problem("统一社会信用代码", "统一社会信用代码应为18位数字或大写字母");
            }
            let role = cells.required("身份", 20).unwrap_or_default();
            put("company", company.clone());
            put("credit_code", code);
            put("role", role);
            company
        }
        DatasetKind::PropertyOwner => {
            let location = cells.required("坐落", 200).unwrap_or_default();
            let area = match cells.cell("建筑面积").map(parse_area) {
                Some(Some(centi)) => centi,
                _ => {
                    cells.problem("建筑面积", "建筑面积应为正数（平方米），最多两位小数");
                    0
                }
            };
            let detail = property_detail(&location, area);
            put("location", location);
            put("area_centi_m2", area.to_string());
            detail
        }
        DatasetKind::MovedOut => {
            let destination = cells.required("迁往地", 100).unwrap_or_default();
            put("destination", destination.clone());
            format!("迁往{destination}")
        }
    };
    Some(FactRow {
        line: cells.row.line,
        id_number: id_number?,
        name: name?,
        cadre,
        since: since?,
        until,
        detail,
        attrs,
    })
}

/// The detail text of a property: `坐落，建筑面积186.50平方米`.
pub fn property_detail(location: &str, area_centi_m2: u64) -> String {
    format!(
        "{location}，建筑面积{}.{:02}平方米",
        area_centi_m2 / 100,
        area_centi_m2 % 100
    )
}

/// A date as departments write it: `2024-03-05`, `2024/3/5`, `2024.3.5`, `20240305`,
/// `2024年3月5日`, or an XLSX date cell; empty is no date. Years 1900 to 2100.
pub fn parse_date(cell: &Cell) -> Result<Option<NaiveDate>, &'static str> {
    const BAD: &str = "日期无效，应如2024-03-05、2024/3/5或20240305";
    let text = match cell {
        Cell::DateTimeIso(text) => text.trim().chars().take(10).collect(),
        // Excel keeps a number typed as 20240305 as a float.
        other => huimin_kit::table::plain_text(other),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        NaiveDate::parse_from_str(text, "%Y%m%d").ok()
    } else {
        let normal = text
            .replace(['年', '月', '/', '.'], "-")
            .trim_end_matches('日')
            .to_owned();
        NaiveDate::parse_from_str(&normal, "%Y-%m-%d").ok()
    };
    date.filter(|d| (1900..=2100).contains(&chrono::Datelike::year(d)))
        .map(Some)
        .ok_or(BAD)
}

/// A building area in m² (建筑面积) as hundredths: `186.5`, `186.50㎡`, `186.5平方米`;
/// `None` if it is not a positive area with at most two decimals.
pub fn parse_area(cell: &Cell) -> Option<u64> {
    let text = match cell {
        Cell::Float(value) => huimin_kit::table::amount_text(*value),
        other => huimin_kit::table::plain_text(other),
    };
    let text = text.trim();
    let text = text
        .strip_suffix("平方米")
        .or_else(|| text.strip_suffix('㎡'))
        .or_else(|| text.strip_suffix("m²"))
        .unwrap_or(text)
        .trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 7
        || fraction.len() > 2
        || !digits(whole)
        || !digits(fraction)
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let fraction: u64 = format!("{fraction:0<2}").parse().ok()?;
    Some(whole * 100 + fraction).filter(|&centi| centi > 0)
}

/// Whether a text has the shape of a unified social credit code (统一社会信用代码,
/// GB 32100): 18 digits and capital letters other than I, O, Z, S, V.
fn credit_code_shape(code: &str) -> bool {
    code.len() == 18
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOZSV".contains(&b)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
