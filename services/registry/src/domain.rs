//! registry's value types: project kinds, the status machine, the budget by
//! fund source, milestones and a project's details with the checks every
//! write passes (money within the approved amount, dates in order, the
//! village within its town).

use std::{fmt, str::FromStr};

use chrono::NaiveDate;
use huimin_kit::{
    auth::{Caller, Role},
    money::{Fen, halfwidth},
    status::FieldViolation,
};
use serde::{Deserialize, Serialize};

/// What a project builds (项目类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Roads,
    Water,
    Housing,
    Industry,
    Education,
    Health,
    Environment,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Roads,
        Kind::Water,
        Kind::Housing,
        Kind::Industry,
        Kind::Education,
        Kind::Health,
        Kind::Environment,
        Kind::Other,
    ];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Roads => "roads",
            Kind::Water => "water",
            Kind::Housing => "housing",
            Kind::Industry => "industry",
            Kind::Education => "education",
            Kind::Health => "health",
            Kind::Environment => "environment",
            Kind::Other => "other",
        }
    }

    /// The label staff and the public read, and its short form in files.
    pub fn labels_zh(self) -> (&'static str, &'static str) {
        match self {
            Kind::Roads => ("道路交通", "道路"),
            Kind::Water => ("饮水安全", "饮水"),
            Kind::Housing => ("住房保障", "住房"),
            Kind::Industry => ("产业发展", "产业"),
            Kind::Education => ("教育", "教育"),
            Kind::Health => ("医疗卫生", "医疗"),
            Kind::Environment => ("人居环境", "环境"),
            Kind::Other => ("其他", "其它"),
        }
    }
}

/// Accepts the stored form and both Chinese labels.
impl FromStr for Kind {
    type Err = &'static str;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Kind::ALL
            .into_iter()
            .find(|k| {
                let (long, short) = k.labels_zh();
                k.as_str() == text || long == text || short == text
            })
            .ok_or("项目类型应为道路交通、饮水安全、住房保障、产业发展、教育、医疗卫生、人居环境或其他")
    }
}

/// Where a project stands (项目状态).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Planned,
    Approved,
    UnderConstruction,
    Accepted,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Planned,
        Status::Approved,
        Status::UnderConstruction,
        Status::Accepted,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Approved => "approved",
            Status::UnderConstruction => "under_construction",
            Status::Accepted => "accepted",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Planned => "计划",
            Status::Approved => "已批复",
            Status::UnderConstruction => "在建",
            Status::Accepted => "已验收",
            Status::Cancelled => "已取消",
        }
    }

    /// The legal transitions: forward one step at a time, or cancelled from
    /// any state before acceptance. Nothing leaves accepted or cancelled.
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Planned, Status::Approved)
                | (Status::Approved, Status::UnderConstruction)
                | (Status::UnderConstruction, Status::Accepted)
                | (
                    Status::Planned | Status::Approved | Status::UnderConstruction,
                    Status::Cancelled
                )
        )
    }

    /// Why `self → to` is refused, naming both states.
    pub fn refusal(self, to: Status) -> String {
        format!(
            "项目状态不能从「{}」改为「{}」",
            self.label_zh(),
            to.label_zh()
        )
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The budget by fund source (资金来源), in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    pub central_fen: i64,
    pub region_fen: i64,
    pub city_fen: i64,
    pub county_fen: i64,
    pub other_fen: i64,
}

impl Funding {
    fn sources(&self) -> [i64; 5] {
        [
            self.central_fen,
            self.region_fen,
            self.city_fen,
            self.county_fen,
            self.other_fen,
        ]
    }

    /// The sum, or `None` on overflow.
    pub fn total(&self) -> Option<i64> {
        self.sources()
            .into_iter()
            .try_fold(0i64, |sum, fen| sum.checked_add(fen))
    }
}

/// A step of a project (节点), planned and, once reached, done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub name: String,
    pub planned_date: Option<NaiveDate>,
    pub done_date: Option<NaiveDate>,
    pub note: String,
}

/// Everything staff write about a project but its code and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub name: String,
    pub kind: Kind,
    pub town_code: String,
    pub village_code: Option<String>,
    pub year: i32,
    pub funding: Funding,
    pub approved_fen: i64,
    pub disbursed_fen: i64,
    pub contractor: String,
    pub department: String,
    pub officer: String,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
    pub actual_start: Option<NaiveDate>,
    pub actual_end: Option<NaiveDate>,
    pub beneficiary_households: i32,
    pub milestones: Vec<Milestone>,
}

/// The fields whose change is part of a project's public money history.
pub const MONEY_FIELDS: [&str; 3] = ["funding", "approved_fen", "disbursed_fen"];

/// The largest amount a project may carry: 10^13 fen, as for payments.
const MAX_FEN: i64 = 10_000_000_000_000;

/// Parses a date as staff write it: `2026-03-01`, `2026/3/1`, `2026年3月1日`;
/// empty is no date.
pub fn parse_date(text: &str) -> Result<Option<NaiveDate>, &'static str> {
    let text = halfwidth(text);
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let normal = text
        .replace(['年', '月', '/'], "-")
        .trim_end_matches('日')
        .to_owned();
    NaiveDate::parse_from_str(&normal, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
        .map(Some)
        .ok_or("日期应为2000至2100年间的有效日期，如2026-03-01")
}

fn digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a text is a project code: letters, digits, `-` and `_`, at most 40.
pub fn valid_code(code: &str) -> bool {
    (1..=40).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Details {
    /// Every rule a project's details must meet, as field violations; `today`
    /// bounds the dates of things that have happened.
    pub fn check(&self, today: NaiveDate) -> Vec<FieldViolation> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, message: String| {
            problems.push(FieldViolation::new(field, message));
        };
        let name_len = self.name.trim().chars().count();
        if name_len == 0 || name_len > 100 {
            bad("name", "项目名称不能为空，且不超过100个字".into());
        }
        if !digits(&self.town_code, 9) {
            bad("town_code", "乡镇代码应为9位数字".into());
        }
        if let Some(village) = &self.village_code {
            if !digits(village, 12) {
                bad("village_code", "村代码应为12位数字".into());
            } else if !village.starts_with(&self.town_code) {
                bad("village_code", "该村不属于所选乡镇".into());
            }
        }
        if !(2000..=2100).contains(&self.year) {
            bad("year", "年度应在2000至2100之间".into());
        }
        let amounts = [
            ("funding", self.funding.central_fen),
            ("funding", self.funding.region_fen),
            ("funding", self.funding.city_fen),
            ("funding", self.funding.county_fen),
            ("funding", self.funding.other_fen),
            ("approved_fen", self.approved_fen),
            ("disbursed_fen", self.disbursed_fen),
        ];
        let mut amounts_ok = true;
        for (field, fen) in amounts {
            if !(0..=MAX_FEN).contains(&fen) {
                amounts_ok = false;
                bad(field, "金额不能为负数，且不超过1000亿元".into());
            }
        }
        if amounts_ok {
            let total = self.funding.total().unwrap_or(i64::MAX);
            if total != self.approved_fen {
                bad(
                    "funding",
                    format!(
                        "各来源资金合计（{}元）应等于批复金额（{}元）",
                        Fen::from_fen(total),
                        Fen::from_fen(self.approved_fen)
                    ),
                );
            }
            if self.disbursed_fen > self.approved_fen {
                bad(
                    "disbursed_fen",
                    format!(
                        "拨付金额（{}元）不能超过批复金额（{}元）",
                        Fen::from_fen(self.disbursed_fen),
                        Fen::from_fen(self.approved_fen)
                    ),
                );
            }
        }
        for (field, text, max) in [
            ("contractor", &self.contractor, 100),
            ("department", &self.department, 50),
            ("officer", &self.officer, 50),
        ] {
            if text.chars().count() > max {
                bad(field, format!("不超过{max}个字"));
            }
        }
        if self.department.trim().is_empty() {
            bad("department", "请填写责任单位".into());
        }
        if self.officer.trim().is_empty() {
            bad("officer", "请填写责任人".into());
        }
        if let (Some(start), Some(end)) = (self.planned_start, self.planned_end)
            && end < start
        {
            bad("planned_end", "计划完工日期不能早于计划开工日期".into());
        }
        if self.actual_end.is_some() && self.actual_start.is_none() {
            bad(
                "actual_start",
                "有实际完工日期的项目须填写实际开工日期".into(),
            );
        }
        if let (Some(start), Some(end)) = (self.actual_start, self.actual_end)
            && end < start
        {
            bad("actual_end", "实际完工日期不能早于实际开工日期".into());
        }
        for (field, date) in [
            ("actual_start", self.actual_start),
            ("actual_end", self.actual_end),
        ] {
            if date.is_some_and(|d| d > today) {
                bad(field, "实际日期不能晚于今天".into());
            }
        }
        if !(0..=1_000_000).contains(&self.beneficiary_households) {
            bad(
                "beneficiary_households",
                "受益户数应在0至1000000之间".into(),
            );
        }
        if self.milestones.len() > 50 {
            bad("milestones", "节点不超过50个".into());
        }
        for (i, m) in self.milestones.iter().enumerate() {
            let field = format!("milestones[{i}]");
            if m.name.trim().is_empty() || m.name.chars().count() > 100 {
                bad(&field, "节点名称不能为空，且不超过100个字".into());
            }
            if m.done_date.is_some_and(|d| d > today) {
                bad(&field, "节点完成日期不能晚于今天".into());
            }
            let earliest = self.planned_start.or(self.actual_start);
            if let Some(earliest) = earliest
                && [m.planned_date, m.done_date]
                    .into_iter()
                    .flatten()
                    .any(|d| d < earliest)
            {
                bad(&field, "节点日期不能早于项目开工日期".into());
            }
            if m.note.chars().count() > 500 {
                bad(&field, "节点说明不超过500个字".into());
            }
        }
        problems
    }
}

/// Whether `caller` may create or change a project with these details:
/// admins and inspectors everywhere, town officers in their town, department
/// officers for their department's projects.
pub fn may_write(caller: &Caller, details: &Details) -> bool {
    match caller.role {
        Role::Admin | Role::Inspector => true,
        Role::Town => caller.scope.as_deref() == Some(details.town_code.as_str()),
        Role::Department => caller.scope.as_deref() == Some(details.department.as_str()),
        Role::Auditor | Role::Provincial | Role::Gateway | Role::Service => false,
    }
}

/// Whether `caller` may read a project's full record and versions: whoever
/// may write it, and auditors.
pub fn may_read(caller: &Caller, details: &Details) -> bool {
    caller.role == Role::Auditor || may_write(caller, details)
}

/// The changes from `old` to `new` as `{field: [old, new]}`; every field when
/// there is no `old`.
pub fn diff(old: Option<&serde_json::Value>, new: &serde_json::Value) -> serde_json::Value {
    let mut changes = serde_json::Map::new();
    if let Some(new) = new.as_object() {
        for (field, value) in new {
            let before = old
                .and_then(|o| o.get(field))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            if &before != value {
                changes.insert(
                    field.clone(),
                    serde_json::Value::Array(vec![before, value.clone()]),
                );
            }
        }
    }
    serde_json::Value::Object(changes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn road() -> Details {
        Details {
            name: "金丰村硬化道路".into(),
            kind: Kind::Roads,
            town_code: "450923100".into(),
            village_code: Some("450923100201".into()),
            year: 2026,
            funding: Funding {
                central_fen: 6_000_000,
                county_fen: 4_000_000,
                ..Funding::default()
            },
            approved_fen: 10_000_000,
            disbursed_fen: 0,
            contractor: "博白县路桥公司".into(),
            department: "博白县交通运输局".into(),
            officer: "李建国".into(),
            planned_start: Some(day(2026, 3, 1)),
            planned_end: Some(day(2026, 9, 30)),
            actual_start: None,
            actual_end: None,
            beneficiary_households: 120,
            milestones: vec![],
        }
    }

    fn fields(details: &Details) -> Vec<String> {
        details
            .check(day(2026, 6, 1))
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn the_status_machine_moves_forward_or_cancels() {
        use Status::*;
        let legal = [
            (Planned, Approved),
            (Approved, UnderConstruction),
            (UnderConstruction, Accepted),
            (Planned, Cancelled),
            (Approved, Cancelled),
            (UnderConstruction, Cancelled),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
        assert_eq!(
            Accepted.refusal(UnderConstruction),
            "项目状态不能从「已验收」改为「在建」"
        );
    }

    #[test]
    fn a_good_project_passes_every_check() {
        assert!(fields(&road()).is_empty());
    }

    #[test]
    fn disbursed_over_approved_names_both_amounts() {
        let mut details = road();
        details.disbursed_fen = 10_000_001;
        let problems = details.check(day(2026, 6, 1));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "disbursed_fen");
        assert_eq!(
            problems[0].description,
            "拨付金额（100000.01元）不能超过批复金额（100000.00元）"
        );
    }

    #[test]
    fn sources_must_add_up_to_the_approved_amount() {
        let mut details = road();
        details.funding.other_fen = 1;
        assert_eq!(fields(&details), ["funding"]);
    }

    #[test]
    fn dates_must_be_in_order_and_not_in_the_future() {
        let mut details = road();
        details.planned_end = Some(day(2026, 2, 1));
        details.actual_end = Some(day(2026, 5, 1));
        details.milestones.push(Milestone {
            name: "路基".into(),
            planned_date: Some(day(2025, 1, 1)),
            done_date: Some(day(2027, 1, 1)),
            note: String::new(),
        });
        assert_eq!(
            fields(&details),
            [
                "planned_end",
                "actual_start",
                "milestones[0]",
                "milestones[0]"
            ]
        );
    }

    #[test]
    fn a_village_of_another_town_is_refused() {
        let mut details = road();
        details.village_code = Some("450923101201".into());
        assert_eq!(fields(&details), ["village_code"]);
    }

    #[test]
    fn kinds_and_dates_parse_as_staff_write_them() {
        assert_eq!("道路".parse::<Kind>(), Ok(Kind::Roads));
        assert_eq!("饮水安全".parse::<Kind>(), Ok(Kind::Water));
        assert_eq!("industry".parse::<Kind>(), Ok(Kind::Industry));
        assert!("桥梁".parse::<Kind>().is_err());
        for text in ["2026-03-01", "2026/3/1", "2026年3月1日", "２０２６-03-01"] {
            assert_eq!(parse_date(text), Ok(Some(day(2026, 3, 1))), "{text}");
        }
        assert_eq!(parse_date(""), Ok(None));
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("1999-01-01").is_err());
    }

    #[test]
    fn diffs_name_only_what_changed() {
        let old = serde_json::json!({"a": 1, "b": 2});
        let new = serde_json::json!({"a": 1, "b": 3});
        assert_eq!(diff(Some(&old), &new), serde_json::json!({"b": [2, 3]}));
        assert_eq!(
            diff(None, &old),
            serde_json::json!({"a": [null, 1], "b": [null, 2]})
        );
    }
}
