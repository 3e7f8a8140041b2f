//! The triage rule set: its JSON form, the checks an edited set must pass,
//! and the built-in set for 博白县 (`default_rules.json`), read by the very
//! same parser as staff edits.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use huimin_kit::county::{self, County};

use super::matching::normalise;

/// The built-in rule set for 博白县, in the format staff edit. Misconduct
/// categories weigh their keywords 3-4; subject categories (housing, 低保,
/// projects, farm subsidies) weigh theirs 1-2, so "what went wrong" outranks
/// "what it is about" when a report mentions both.
const DEFAULT_RULES: &str = include_str!("default_rules.json");

/// Highest priority (most urgent).
pub const PRIORITY_HIGHEST: u8 = 1;
/// Lowest priority.
pub const PRIORITY_LOWEST: u8 = 4;

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

    pub(super) fn fallback(&self) -> &Category {
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

/// The built-in rule set for 博白县, used until staff store their own.
pub fn default_rules() -> Rules {
    parse_rules(DEFAULT_RULES)
        .expect("default_rules.json passes validation (unit test `default_rules_file_is_valid`)")
}

impl Rules {
    /// The built-in set moved to `county`: 博白县's commission becomes the
    /// configured one, and every other department named "博白县…" is named
    /// after the configured county instead (县民政局 stays 县民政局). Staff of
    /// another county are expected to store rules of their own; this keeps
    /// reports out of 博白县's queues until they do.
    pub fn for_county(mut self, county: &County) -> Rules {
        let rename = |department: &mut String| {
            if department == county::DEFAULT_COMMISSION {
                *department = county.commission().to_owned();
            } else if let Some(rest) = department.strip_prefix(county::DEFAULT_NAME) {
                *department = format!("{}{rest}", county.name());
            }
        };
        for category in &mut self.categories {
            rename(&mut category.department);
        }
        for department in self.program_departments.values_mut() {
            rename(department);
        }
        self
    }
}

/// Whether this many independent reports about one subject within the window call for
/// escalation to the supervising level.
pub fn should_escalate(rules: &Rules, independent_reports_in_window: usize) -> bool {
    let threshold = usize::try_from(rules.escalation.threshold).unwrap_or(usize::MAX);
    independent_reports_in_window >= threshold
}

#[cfg(test)]
mod tests {
    use huimin_kit::config::Env;

    use super::*;

    #[test]
    fn default_rules_file_is_valid() {
        let rules = parse_rules(DEFAULT_RULES).expect("the built-in file passes validation");

        assert_eq!(rules.categories.len(), 9);
        assert_eq!(rules.fallback().code, "other");
        assert_eq!(
            rules.escalation,
            Escalation {
                window_days: 30,
                threshold: 3
            }
        );
    }

    #[test]
    fn a_broken_copy_of_the_default_file_is_refused_with_a_clear_error() {
        let truncated = &DEFAULT_RULES[..DEFAULT_RULES.len() / 2];
        let two_fallbacks = DEFAULT_RULES.replacen(
            "\"code\": \"benefit_fraud\",",
            "\"code\": \"benefit_fraud\", \"fallback\": true,",
            1,
        );
        let duplicate = DEFAULT_RULES.replacen("\"favouritism\"", "\"benefit_fraud\"", 1);

        let truncated = parse_rules(truncated).expect_err("half a file is not JSON");

        assert!(
            truncated.to_string().starts_with("规则JSON格式错误（第"),
            "{truncated}"
        );
        assert_eq!(
            parse_rules(&two_fallbacks),
            Err(RulesError::FallbackCount(2))
        );
        assert_eq!(
            parse_rules(&duplicate).map_err(|e| e.to_string()),
            Err("分类代码重复：benefit_fraud".to_owned())
        );
    }

    #[test]
    fn the_default_rules_follow_the_configured_county() {
        let rong = County::from_env(&Env::from_pairs([
            ("HUIMIN_COUNTY_CODE", "450921"),
            ("HUIMIN_COUNTY_NAME", "容县"),
            ("HUIMIN_COUNTY_COMMISSION", "容县纪律检查委员会"),
        ]))
        .expect("valid county");

        let bobai = default_rules().for_county(&County::default());
        let moved = default_rules().for_county(&rong);

        assert_eq!(bobai, default_rules(), "博白县 is the file as written");
        let department =
            |rules: &Rules, code: &str| rules.category(code).map(|c| c.department.clone());
        assert_eq!(
            department(&moved, "favouritism").as_deref(),
            Some("容县纪律检查委员会")
        );
        assert_eq!(
            department(&moved, "housing").as_deref(),
            Some("容县住房和城乡建设局")
        );
        assert_eq!(
            moved
                .program_departments
                .get("DIBAO_RURAL")
                .map(String::as_str),
            Some("容县民政局")
        );
        let text = moved.to_json();
        assert!(!text.contains("博白"), "{text}");
        assert_eq!(parse_rules(&text), Ok(moved), "still a valid rule set");
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
    fn third_report_in_the_window_escalates() {
        let rules = default_rules();
        assert!(!should_escalate(&rules, 2));
        assert!(should_escalate(&rules, 3));
        assert!(should_escalate(&rules, 7));
    }
}
