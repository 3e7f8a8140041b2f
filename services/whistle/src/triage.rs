//! Automatic triage (自动研判): which category a report falls in, which department handles it,
//! how urgent it is, and which reports are about the same subject.
//!
//! The rules are data, not code: staff edit a JSON document (stored by the service) to add
//! keywords, categories or departments without a release. [`parse_rules`] checks an edited set
//! before it can take effect, and [`default_rules`] is the built-in set for 博白县.
//!
//! How a category is chosen, first match wins:
//! 1. the category the reporter picked, if it exists;
//! 2. the category whose keywords score highest in the text (ties go to the earlier category);
//! 3. the category that lists the report's subsidy program;
//! 4. the fallback category.
//!
//! Keywords come before the program on purpose. A program says what the report is *about*,
//! the text says what went *wrong*: "my 危房改造 subsidy never arrived" is withheld money
//! (截留克扣) that the housing bureau must chase, not a question about housing policy. The
//! program still decides the department for categories that say so (`department_from_program`),
//! so that report goes to 县住建局. Misconduct by officials (优亲厚友, 作风问题) stays with
//! 县纪委监委 whatever the program: the department that paid the money is not the one to
//! investigate its own staff.
//!
//! Matching is plain substring search on normalised text. It does not understand negation
//! ("没有克扣") — a human reads every report; triage only puts it in the right queue first.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// Highest priority (most urgent).
pub const PRIORITY_HIGHEST: u8 = 1;
/// Lowest priority.
pub const PRIORITY_LOWEST: u8 = 4;
/// How many levels urgent keywords may raise a report's priority.
const MAX_URGENT_RAISE: u8 = 2;

/// A complete, validated triage rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// In order: earlier categories win keyword-score ties.
    pub categories: Vec<Category>,
    /// Department that runs each subsidy program, by program code (e.g. HOUSE_RENOVATION →
    /// 县住建局).
    #[serde(default)]
    pub program_departments: BTreeMap<String, String>,
    /// Phrases that make any report more urgent (threats, retaliation, deaths).
    #[serde(default)]
    pub urgent_keywords: Vec<String>,
    pub escalation: Escalation,
}

/// One kind of problem a report can describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Stable identifier stored with reports, e.g. `benefit_fraud`.
    pub code: String,
    /// Name staff and reporters see, e.g. 冒领骗取补贴.
    pub name_zh: String,
    /// Department that handles the category when the program does not decide it.
    pub department: String,
    /// When true and the report names a program listed in `program_departments`, that
    /// program's department handles the report instead of `department`.
    #[serde(default)]
    pub department_from_program: bool,
    #[serde(default)]
    pub keywords: Vec<Keyword>,
    /// Program codes that imply this category when the text matches no keyword.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Base priority, 1 (highest) to 4.
    pub priority: u8,
    /// The category for reports nothing else matches; exactly one category has it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
}

/// A phrase and how strongly it points to its category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyword {
    pub phrase: String,
    pub weight: u32,
}

/// When repeated reports about one subject are escalated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub window_days: u32,
    /// Independent reports within the window that trigger escalation.
    pub threshold: u32,
}

/// Why a rule set was refused; shown to the staff member who edited it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("规则JSON格式错误（第{line}行第{column}列）：{message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("至少需要一个分类")]
    NoCategories,
    #[error("分类代码不能为空")]
    EmptyCode,
    #[error("分类代码重复：{0}")]
    DuplicateCode(String),
    #[error("分类“{0}”的名称或处理部门不能为空")]
    MissingName(String),
    #[error("分类“{0}”的优先级必须在1到4之间")]
    PriorityOutOfRange(String),
    #[error("分类“{0}”至少需要一个关键词或一个项目代码")]
    NothingToMatch(String),
    #[error("分类“{category}”的关键词“{phrase}”无效（关键词不能为空，权重须在1到100之间）")]
    BadKeyword { category: String, phrase: String },
    #[error("项目代码“{0}”同时属于多个分类")]
    ProgramInTwoCategories(String),
    #[error("必须有且只有一个兜底分类（fallback），现有{0}个")]
    FallbackCount(usize),
    #[error("紧急关键词不能为空字符串")]
    EmptyUrgentKeyword,
    #[error("升级规则无效：统计天数须在1到365之间，阈值至少为2")]
    BadEscalation,
}

impl Rules {
    /// The rule set as pretty JSON, the format [`parse_rules`] reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("rules contain only strings, numbers and maps")
    }

    /// The category with this code.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    fn fallback(&self) -> &Category {
        self.categories
            .iter()
            .find(|c| c.fallback)
            .expect("validated rules have exactly one fallback category")
    }

    fn validate(&self) -> Result<(), RulesError> {
        if self.categories.is_empty() {
            return Err(RulesError::NoCategories);
        }
        let mut codes = HashSet::new();
        let mut programs = HashSet::new();
        for category in &self.categories {
            let code = &category.code;
            if code.trim().is_empty() {
                return Err(RulesError::EmptyCode);
            }
            if !codes.insert(code.as_str()) {
                return Err(RulesError::DuplicateCode(code.clone()));
            }
            if category.name_zh.trim().is_empty() || category.department.trim().is_empty() {
                return Err(RulesError::MissingName(code.clone()));
            }
            if !(PRIORITY_HIGHEST..=PRIORITY_LOWEST).contains(&category.priority) {
                return Err(RulesError::PriorityOutOfRange(code.clone()));
            }
            if !category.fallback && category.keywords.is_empty() && category.programs.is_empty() {
                return Err(RulesError::NothingToMatch(code.clone()));
            }
            for keyword in &category.keywords {
                if normalise(&keyword.phrase).is_empty() || !(1..=100).contains(&keyword.weight) {
                    return Err(RulesError::BadKeyword {
                        category: code.clone(),
                        phrase: keyword.phrase.clone(),
                    });
                }
            }
            for program in &category.programs {
                if !programs.insert(program.as_str()) {
                    return Err(RulesError::ProgramInTwoCategories(program.clone()));
                }
            }
        }
        let fallbacks = self.categories.iter().filter(|c| c.fallback).count();
        if fallbacks != 1 {
            return Err(RulesError::FallbackCount(fallbacks));
        }
        if self.urgent_keywords.iter().any(|k| normalise(k).is_empty()) {
            return Err(RulesError::EmptyUrgentKeyword);
        }
        if !(1..=365).contains(&self.escalation.window_days) || self.escalation.threshold < 2 {
            return Err(RulesError::BadEscalation);
        }
        Ok(())
    }
}

/// Reads and validates a rule set edited by staff.
pub fn parse_rules(json: &str) -> Result<Rules, RulesError> {
    let rules: Rules = serde_json::from_str(json).map_err(|e| RulesError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    rules.validate()?;
    Ok(rules)
}

/// What a report is about, as far as the reporter or the ledger could tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Subsidy program code, e.g. DIBAO_RURAL.
    pub program_code: Option<String>,
    /// 12-digit village (community) division code.
    pub village_code: Option<String>,
    /// The ledger's stable key for a person (not an ID number).
    pub person_key: Option<String>,
    pub project_code: Option<String>,
    /// Name of the official the report is about.
    pub official: Option<String>,
}

/// How the category was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageBasis {
    ReporterChoice,
    Keywords,
    Program,
    Fallback,
}

/// The outcome of triage: where a report goes first and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageResult {
    pub category: String,
    pub department: String,
    /// 1 (highest) to 4.
    pub priority: u8,
    /// The matched category keywords, then the matched urgent keywords, for the reader.
    pub matched: Vec<String>,
    /// Sum of the weights of the category's matched keywords.
    pub score: u32,
    pub basis: TriageBasis,
}

/// Triage of one report.
pub fn triage(
    rules: &Rules,
    text: &str,
    chosen_category: Option<&str>,
    subject: &Subject,
) -> TriageResult {
    let text = normalise(text);
    let program = subject.program_code.as_deref().map(str::trim);

    let scored = rules.categories.iter().map(|category| {
        let hits = matching(
            &text,
            category.keywords.iter().map(|k| (k.phrase.as_str(), k)),
        );
        let score = hits.iter().map(|k| k.weight).sum::<u32>();
        (category, hits, score)
    });
    // `max_by_key` keeps the last of equal maxima; reversing keeps the first in rule order.
    let best = scored
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .filter(|(_, _, score)| *score > 0)
        .max_by_key(|(_, _, score)| *score);

    let chosen = chosen_category.and_then(|code| rules.category(code.trim()));
    let implied = program.and_then(|p| {
        rules
            .categories
            .iter()
            .find(|c| c.programs.iter().any(|q| q == p))
    });
    let (category, basis) = match (chosen, &best, implied) {
        (Some(category), _, _) => (category, TriageBasis::ReporterChoice),
        (None, Some((category, _, _)), _) => (*category, TriageBasis::Keywords),
        (None, None, Some(category)) => (category, TriageBasis::Program),
        (None, None, None) => (rules.fallback(), TriageBasis::Fallback),
    };

    let hits = matching(
        &text,
        category.keywords.iter().map(|k| (k.phrase.as_str(), k)),
    );
    let score = hits.iter().map(|k| k.weight).sum();
    let urgent = matching(&text, rules.urgent_keywords.iter().map(|k| (k.as_str(), k)));
    let raise = u8::try_from(urgent.len())
        .unwrap_or(u8::MAX)
        .min(MAX_URGENT_RAISE);
    let priority = category
        .priority
        .saturating_sub(raise)
        .max(PRIORITY_HIGHEST);

    let mut matched: Vec<String> = hits.iter().map(|k| k.phrase.clone()).collect();
    for phrase in urgent {
        if !matched.contains(phrase) {
            matched.push(phrase.clone());
        }
    }

    let department = program
        .filter(|_| category.department_from_program)
        .and_then(|p| rules.program_departments.get(p))
        .unwrap_or(&category.department);

    TriageResult {
        category: category.code.clone(),
        department: department.clone(),
        priority,
        matched,
        score,
        basis,
    }
}

/// The items whose phrase occurs in `text`, leaving out a phrase that only matched as part of
/// a longer matched phrase of the same list (打击报复 should not also count as 报复).
fn matching<'a, T>(text: &str, items: impl Iterator<Item = (&'a str, &'a T)>) -> Vec<&'a T> {
    let found: Vec<(String, &T)> = items
        .map(|(phrase, item)| (normalise(phrase), item))
        .filter(|(phrase, _)| !phrase.is_empty() && text.contains(phrase.as_str()))
        .collect();
    found
        .iter()
        .filter(|(phrase, _)| {
            !found
                .iter()
                .any(|(other, _)| other.len() > phrase.len() && other.contains(phrase.as_str()))
        })
        .map(|(_, item)| *item)
        .collect()
}

/// Text as keywords are matched against it: whitespace removed, full-width ASCII folded to
/// half-width (phone keyboards mix them), ASCII lower-cased.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Identity of "the same subject" for linking reports and counting them towards escalation.
///
/// Prefers the most specific identifier: a person, then a project, then an official in a
/// village, then a program in a village. `None` when nothing identifies a subject; such
/// reports are never linked. The prefix keeps kinds apart (a person key can never equal a
/// project code).
pub fn subject_key(subject: &Subject) -> Option<String> {
    let field = |value: &Option<String>| {
        value
            .as_deref()
            .map(|v| v.split_whitespace().collect::<String>())
            .filter(|v| !v.is_empty())
    };
    let village = field(&subject.village_code);
    if let Some(person) = field(&subject.person_key) {
        return Some(format!("person:{person}"));
    }
    if let Some(project) = field(&subject.project_code) {
        return Some(format!("project:{project}"));
    }
    if let (Some(official), Some(village)) = (field(&subject.official), &village) {
        return Some(format!("official:{village}:{official}"));
    }
    if let (Some(program), Some(village)) = (field(&subject.program_code), &village) {
        return Some(format!("village-program:{village}:{program}"));
    }
    None
}

/// Whether this many independent reports about one subject within the window call for
/// escalation to the supervising level.
pub fn should_escalate(rules: &Rules, independent_reports_in_window: usize) -> bool {
    let threshold = usize::try_from(rules.escalation.threshold).unwrap_or(usize::MAX);
    independent_reports_in_window >= threshold
}

/// The built-in rule set for 博白县, used until staff store their own.
pub fn default_rules() -> Rules {
    fn category(
        code: &str,
        name_zh: &str,
        department: &str,
        department_from_program: bool,
        priority: u8,
        keywords: &[(&str, u32)],
        programs: &[&str],
    ) -> Category {
        Category {
            code: code.to_owned(),
            name_zh: name_zh.to_owned(),
            department: department.to_owned(),
            department_from_program,
            keywords: keywords
                .iter()
                .map(|&(phrase, weight)| Keyword {
                    phrase: phrase.to_owned(),
                    weight,
                })
                .collect(),
            programs: programs.iter().map(|&p| p.to_owned()).collect(),
            priority,
            fallback: false,
        }
    }
    const JIWEI: &str = "博白县纪委监委";

    // Misconduct categories weigh their keywords 3-4; subject categories (housing, 低保,
    // projects, farm subsidies) weigh theirs 1-2, so "what went wrong" outranks "what it is
    // about" when a report mentions both.
    let categories = vec![
        category(
            "benefit_fraud",
            "冒领骗取补贴",
            "博白县民政局",
            true,
            2,
            &[
                ("冒领", 4),
                ("虚报", 3),
                ("假冒", 3),
                ("冒名", 3),
                ("死人领", 4),
                ("已去世还在领", 4),
                ("去世了还在领", 4),
                ("死了还在领", 4),
                ("骗取", 3),
                ("骗补", 3),
                ("套取", 3),
                ("吃空饷", 3),
                ("不符合条件", 2),
                ("有车有房", 2),
                ("虚假材料", 3),
            ],
            &[],
        ),
        category(
            "favouritism",
            "优亲厚友",
            JIWEI,
            false,
            2,
            &[
                ("优亲厚友", 4),
                ("关系户", 4),
                ("人情保", 4),
                ("关系保", 4),
                ("村干部家属", 4),
                ("干部家属", 3),
                ("亲戚", 3),
                ("亲属", 3),
                ("走后门", 3),
                ("找关系", 3),
                ("自家人", 2),
                ("真正困难的人", 2),
            ],
            &[],
        ),
        category(
            "withholding",
            "截留克扣",
            JIWEI,
            true,
            2,
            &[
                ("克扣", 4),
                ("截留", 4),
                ("挪用", 4),
                ("少发", 3),
                ("没收到", 3),
                ("没有收到", 3),
                ("没到账", 3),
                ("没有到账", 3),
                ("未到账", 3),
                ("扣了", 2),
                ("代领", 3),
                ("存折", 2),
                ("社保卡被", 3),
                ("只发了", 2),
            ],
            &[],
        ),
        category(
            "conduct",
            "作风问题",
            JIWEI,
            false,
            3,
            &[
                ("吃拿卡要", 4),
                ("索要", 4),
                ("好处费", 4),
                ("红包", 3),
                ("送礼", 3),
                ("收钱", 3),
                ("刁难", 3),
                ("不作为", 3),
                ("推诿", 2),
                ("请吃饭", 2),
                ("态度", 2),
                ("骂人", 2),
            ],
            &[],
        ),
        category(
            "housing",
            "危房改造",
            "博白县住房和城乡建设局",
            false,
            3,
            &[
                ("危房", 2),
                ("危房改造", 2),
                ("建房补助", 2),
                ("改造", 1),
                ("房子", 1),
                ("房屋", 1),
                ("漏雨", 1),
                ("倒塌", 2),
            ],
            &["HOUSE_RENOVATION"],
        ),
        category(
            "dibao",
            "低保及特困救助",
            "博白县民政局",
            false,
            3,
            &[
                ("低保", 2),
                ("最低生活保障", 2),
                ("特困", 2),
                ("五保", 2),
                ("临时救助", 2),
            ],
            &["DIBAO_RURAL", "DIBAO_URBAN", "TEKUN", "TEMP_RELIEF"],
        ),
        category(
            "project",
            "工程项目",
            "博白县乡村振兴局",
            false,
            3,
            &[
                ("偷工减料", 4),
                ("豆腐渣", 4),
                ("围标", 4),
                ("串标", 4),
                ("烂尾", 3),
                ("质量差", 2),
                ("修路", 2),
                ("饮水", 2),
                ("工程", 1),
                ("项目", 1),
                ("水泥路", 1),
                ("自来水", 1),
            ],
            &[],
        ),
        category(
            "farm_subsidy",
            "惠农补贴",
            "博白县农业农村局",
            false,
            3,
            &[
                ("耕地地力", 2),
                ("地力补贴", 2),
                ("种粮补贴", 2),
                ("农机补贴", 2),
                ("良种补贴", 2),
                ("生态公益林", 2),
            ],
            &["FARMLAND", "FOREST_ECO"],
        ),
        Category {
            fallback: true,
            ..category("other", "其他", JIWEI, true, 4, &[], &[])
        },
    ];

    let program_departments = [
        ("DIBAO_RURAL", "博白县民政局"),
        ("DIBAO_URBAN", "博白县民政局"),
        ("TEKUN", "博白县民政局"),
        ("ELDERLY", "博白县民政局"),
        ("ORPHAN", "博白县民政局"),
        ("TEMP_RELIEF", "博白县民政局"),
        ("DISABILITY_LIVING", "博白县残疾人联合会"),
        ("DISABILITY_NURSING", "博白县残疾人联合会"),
        ("FARMLAND", "博白县农业农村局"),
        ("FOREST_ECO", "博白县林业局"),
        ("YULU", "博白县乡村振兴局"),
        ("PENSION_RURAL", "博白县人力资源和社会保障局"),
        ("FAMILY_PLANNING", "博白县卫生健康局"),
        ("VETERAN_CARE", "博白县退役军人事务局"),
        ("HOUSE_RENOVATION", "博白县住房和城乡建设局"),
    ]
    .into_iter()
    .map(|(program, department)| (program.to_owned(), department.to_owned()))
    .collect();

    let urgent_keywords = [
        "威胁",
        "恐吓",
        "打击报复",
        "报复",
        "殴打",
        "人身安全",
        "死亡",
        "自杀",
        "克扣",
        "没饭吃",
        "看不起病",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();

    Rules {
        categories,
        program_departments,
        urgent_keywords,
        escalation: Escalation {
            window_days: 30,
            threshold: 3,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(program: &str) -> Subject {
        Subject {
            program_code: Some(program.to_owned()),
            ..Subject::default()
        }
    }

    fn triage_default(text: &str, subject: &Subject) -> TriageResult {
        triage(&default_rules(), text, None, subject)
    }

    #[test]
    fn relatives_given_dibao_is_favouritism_for_the_discipline_commission() {
        let result = triage_default(
            "我们村的村支书把他亲戚都评上了低保，真正困难的人却没有",
            &about("DIBAO_RURAL"),
        );

        assert_eq!(result.category, "favouritism");
        assert_eq!(result.department, "博白县纪委监委");
        assert_eq!(result.priority, 2);
        assert_eq!(result.matched, ["亲戚", "真正困难的人"]);
        assert_eq!(result.basis, TriageBasis::Keywords);
    }

    #[test]
    fn renovation_money_not_arrived_is_withholding_for_the_housing_bureau() {
        let result = triage_default(
            "我家危房改造的2000元补助到现在都没有到账",
            &about("HOUSE_RENOVATION"),
        );

        assert_eq!(result.category, "withholding");
        assert_eq!(result.department, "博白县住房和城乡建设局");
        assert_eq!(result.matched, ["没有到账"]);
        assert_eq!(result.score, 3);
    }

    #[test]
    fn withholding_without_a_program_goes_to_the_discipline_commission() {
        let result = triage_default(
            "我家危房改造的2000元补助到现在都没有到账",
            &Subject::default(),
        );

        assert_eq!(result.category, "withholding");
        assert_eq!(result.department, "博白县纪委监委");
    }

    #[test]
    fn dead_pensioner_still_paid_is_benefit_fraud_for_civil_affairs() {
        let result = triage_default(
            "邻村的王某某去年已经去世了，家里人还在冒领他的高龄津贴",
            &about("ELDERLY"),
        );

        assert_eq!(result.category, "benefit_fraud");
        assert_eq!(result.department, "博白县民政局");
        assert_eq!(result.priority, 2);
    }

    #[test]
    fn shoddy_road_with_threats_is_an_urgent_project_report() {
        let result = triage_default(
            "村里新修的水泥路才半年就烂了，明显偷工减料，村干部还威胁我们不许往上反映",
            &Subject::default(),
        );

        assert_eq!(result.category, "project");
        assert_eq!(result.department, "博白县乡村振兴局");
        assert_eq!(result.priority, 2, "base 3 raised once by 威胁");
        assert_eq!(result.matched, ["偷工减料", "水泥路", "威胁"]);
    }

    #[test]
    fn clerk_asking_for_red_envelope_is_conduct_whatever_the_program() {
        let result = triage_default(
            "去镇上申请低保，经办人索要红包，不给就说材料不全",
            &about("DIBAO_RURAL"),
        );

        assert_eq!(result.category, "conduct");
        assert_eq!(result.department, "博白县纪委监委");
        assert_eq!(result.score, 7);
    }

    #[test]
    fn withheld_dibao_with_retaliation_threat_is_raised_at_most_two_levels() {
        let result = triage_default(
            "村干部克扣我家的低保金，还威胁说再去举报就打击报复",
            &about("DIBAO_RURAL"),
        );

        assert_eq!(result.category, "withholding");
        assert_eq!(result.department, "博白县民政局");
        assert_eq!(result.priority, 1);
        // 报复 only occurs inside 打击报复, so it is not counted again.
        assert_eq!(result.matched, ["克扣", "威胁", "打击报复"]);
    }

    #[test]
    fn text_without_keywords_falls_back_to_the_program_category() {
        let result = triage_default("情况和上次反映的一样，请领导核实", &about("DIBAO_URBAN"));

        assert_eq!(result.category, "dibao");
        assert_eq!(result.department, "博白县民政局");
        assert_eq!(result.basis, TriageBasis::Program);
        assert_eq!(result.score, 0);
    }

    #[test]
    fn text_without_keywords_or_program_goes_to_the_fallback() {
        let result = triage_default("我反映的事情一直没有人管", &Subject::default());

        assert_eq!(result.category, "other");
        assert_eq!(result.department, "博白县纪委监委");
        assert_eq!(result.priority, 4);
        assert_eq!(result.basis, TriageBasis::Fallback);
        assert!(result.matched.is_empty());
    }

    #[test]
    fn reporter_choice_wins_when_it_names_a_category() {
        let rules = default_rules();
        let text = "危房改造验收时，经办人索要好处费";

        let chosen = triage(&rules, text, Some("housing"), &Subject::default());
        let unknown = triage(&rules, text, Some("no_such_category"), &Subject::default());

        assert_eq!(chosen.category, "housing");
        assert_eq!(chosen.basis, TriageBasis::ReporterChoice);
        assert_eq!(unknown.category, "conduct");
    }

    #[test]
    fn equal_scores_go_to_the_earlier_category() {
        // 虚报 (benefit_fraud, 3) and 少发 (withholding, 3).
        let result = triage_default("村里虚报人数，实际又少发", &Subject::default());
        assert_eq!(result.category, "benefit_fraud");
    }

    #[test]
    fn spaces_and_full_width_letters_do_not_hide_keywords() {
        let mut rules = default_rules();
        rules.urgent_keywords.push("110".to_owned());

        let result = triage(
            &rules,
            "他们 冒 领 补贴，我打了１１０",
            None,
            &Subject::default(),
        );

        assert_eq!(result.category, "benefit_fraud");
        assert_eq!(result.matched, ["冒领", "110"]);
    }

    #[test]
    fn staff_edited_rules_change_routing() {
        let mut json: serde_json::Value =
            serde_json::from_str(&default_rules().to_json()).expect("default rules are JSON");
        // Staff add a land-compensation category at the top and send all withholding to the
        // discipline commission regardless of program.
        let categories = json["categories"]
            .as_array_mut()
            .expect("categories is a list");
        categories.insert(
            0,
            serde_json::json!({
                "code": "land",
                "name_zh": "征地补偿",
                "department": "博白县自然资源局",
                "keywords": [{"phrase": "征地", "weight": 4}, {"phrase": "补偿款", "weight": 3}],
                "priority": 2
            }),
        );
        for category in categories.iter_mut() {
            if category["code"] == "withholding" {
                category["department_from_program"] = false.into();
            }
        }
        let edited = parse_rules(&json.to_string()).expect("edited rules are valid");

        let land = triage(
            &edited,
            "征地补偿款被村里截留了一半",
            None,
            &Subject::default(),
        );
        let renovation = triage(
            &edited,
            "我家危房改造的补助没有到账",
            None,
            &about("HOUSE_RENOVATION"),
        );

        assert_eq!(
            (land.category.as_str(), land.department.as_str()),
            ("land", "博白县自然资源局")
        );
        assert_eq!(renovation.department, "博白县纪委监委");
        let before = triage_default("征地补偿款被村里截留了一半", &Subject::default());
        assert_eq!(before.category, "withholding");
    }

    #[test]
    fn default_rules_round_trip_through_json() {
        let rules = default_rules();
        assert_eq!(parse_rules(&rules.to_json()), Ok(rules));
    }

    fn rejected(edit: impl FnOnce(&mut Rules)) -> RulesError {
        let mut rules = default_rules();
        edit(&mut rules);
        parse_rules(&rules.to_json()).expect_err("edited rules are invalid")
    }

    #[test]
    fn invalid_rule_sets_are_refused_with_a_reason_staff_can_read() {
        assert_eq!(
            rejected(|r| r.categories[1].code = "benefit_fraud".to_owned()),
            RulesError::DuplicateCode("benefit_fraud".to_owned())
        );
        assert_eq!(
            rejected(|r| r.categories[0].priority = 5),
            RulesError::PriorityOutOfRange("benefit_fraud".to_owned())
        );
        assert_eq!(
            rejected(|r| r.categories[0].priority = 0),
            RulesError::PriorityOutOfRange("benefit_fraud".to_owned())
        );
        assert_eq!(
            rejected(|r| r.categories[2].keywords.clear()),
            RulesError::NothingToMatch("withholding".to_owned())
        );
        assert_eq!(
            rejected(|r| r.categories.retain(|c| !c.fallback)),
            RulesError::FallbackCount(0)
        );
        assert_eq!(
            rejected(|r| r.categories[0].fallback = true),
            RulesError::FallbackCount(2)
        );
        assert_eq!(
            rejected(|r| r.categories[5].programs.push("HOUSE_RENOVATION".to_owned())),
            RulesError::ProgramInTwoCategories("HOUSE_RENOVATION".to_owned())
        );
        assert_eq!(
            rejected(|r| r.escalation.threshold = 1),
            RulesError::BadEscalation
        );
        assert_eq!(
            rejected(|r| r.categories[0].keywords[0].phrase = " ".to_owned()),
            RulesError::BadKeyword {
                category: "benefit_fraud".to_owned(),
                phrase: " ".to_owned()
            }
        );
        assert_eq!(
            rejected(|r| r.categories[0].keywords[0].weight = 0),
            RulesError::BadKeyword {
                category: "benefit_fraud".to_owned(),
                phrase: "冒领".to_owned()
            }
        );
        assert_eq!(
            RulesError::DuplicateCode("x".to_owned()).to_string(),
            "分类代码重复：x"
        );
    }

    #[test]
    fn misspelt_field_is_refused_instead_of_ignored() {
        let json = default_rules()
            .to_json()
            .replacen("\"keywords\"", "\"keyowrds\"", 1);

        let error = parse_rules(&json).expect_err("unknown field is refused");

        assert!(matches!(error, RulesError::Json { .. }), "{error:?}");
        assert!(
            error.to_string().starts_with("规则JSON格式错误（第"),
            "{error}"
        );
    }

    #[test]
    fn subject_key_prefers_the_most_specific_identifier() {
        let full = Subject {
            program_code: Some("DIBAO_RURAL".to_owned()),
            village_code: Some("450923101201".to_owned()),
            person_key: Some("p-7f3a".to_owned()),
            project_code: Some("XM-2026-017".to_owned()),
            official: Some("张 三".to_owned()),
        };
        let without = |edit: fn(&mut Subject)| {
            let mut subject = full.clone();
            edit(&mut subject);
            subject_key(&subject)
        };

        assert_eq!(subject_key(&full).as_deref(), Some("person:p-7f3a"));
        assert_eq!(
            without(|s| s.person_key = Some("  ".to_owned())).as_deref(),
            Some("project:XM-2026-017")
        );
        assert_eq!(
            without(|s| {
                s.person_key = None;
                s.project_code = None;
            })
            .as_deref(),
            Some("official:450923101201:张三")
        );
        assert_eq!(
            without(|s| {
                s.person_key = None;
                s.project_code = None;
                s.official = None;
            })
            .as_deref(),
            Some("village-program:450923101201:DIBAO_RURAL")
        );
    }

    #[test]
    fn subject_key_is_none_without_an_identifiable_subject() {
        let official_without_village = Subject {
            official: Some("张三".to_owned()),
            program_code: Some("DIBAO_RURAL".to_owned()),
            ..Subject::default()
        };
        assert_eq!(subject_key(&Subject::default()), None);
        assert_eq!(subject_key(&official_without_village), None);
    }

    #[test]
    fn third_report_in_the_window_escalates() {
        let rules = default_rules();
        assert!(!should_escalate(&rules, 2));
        assert!(should_escalate(&rules, 3));
        assert!(should_escalate(&rules, 7));
    }
}
