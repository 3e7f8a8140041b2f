//! The cross-check rules as data: each rule's id, plain-Chinese description, legal basis,
//! severity and its thresholds and exemptions, in one JSON document staff can read and
//! change. What a rule *does* is fixed by its id (its SQL, in [`super::sql`]); what it
//! *counts* is here. [`parse_rules`] validates an edited document before it can take
//! effect, and the built-in defaults go through the same parser.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::programs::Program;

/// The rules the engine knows, in the order they run and are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    PaidAfterDeath,
    PublicEmployee,
    CadreFavoritism,
    VehicleOwner,
    CompanyOwner,
    PropertyOwner,
    PaidTwice,
    ExclusivePrograms,
    GrantRepeated,
    AboveStandard,
    PaidAfterMovingOut,
    AgeOutOfRange,
    SharedBankAccount,
}

impl RuleId {
    pub const ALL: [RuleId; 13] = [
        RuleId::PaidAfterDeath,
        RuleId::PublicEmployee,
        RuleId::CadreFavoritism,
        RuleId::VehicleOwner,
        RuleId::CompanyOwner,
        RuleId::PropertyOwner,
        RuleId::PaidTwice,
        RuleId::ExclusivePrograms,
        RuleId::GrantRepeated,
        RuleId::AboveStandard,
        RuleId::PaidAfterMovingOut,
        RuleId::AgeOutOfRange,
        RuleId::SharedBankAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::PaidAfterDeath => "paid_after_death",
            RuleId::PublicEmployee => "public_employee",
            RuleId::CadreFavoritism => "cadre_favoritism",
            RuleId::VehicleOwner => "vehicle_owner",
            RuleId::CompanyOwner => "company_owner",
            RuleId::PropertyOwner => "property_owner",
            RuleId::PaidTwice => "paid_twice",
            RuleId::ExclusivePrograms => "exclusive_programs",
            RuleId::GrantRepeated => "grant_repeated",
            RuleId::AboveStandard => "above_standard",
            RuleId::PaidAfterMovingOut => "paid_after_moving_out",
            RuleId::AgeOutOfRange => "age_out_of_range",
            RuleId::SharedBankAccount => "shared_bank_account",
        }
    }

    pub fn parse(text: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// How sure a finding is: `low` needs review rather than proof (优亲厚友).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [Severity::High, Severity::Medium, Severity::Low]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A standard for one band of a program: the most a payment may be for a person whose age
/// at the period's start is within `min_age..=max_age`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub program: String,
    pub min_age: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
    pub max_fen: i64,
}

/// The ages a program may be paid at (age at the period's start, whole years).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeRange {
    pub program: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
}

/// Thresholds and exemptions. Each rule reads the ones it needs ([`RuleId::needs`]); the
/// others must be absent, so a typo is an error rather than a silently ignored setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The programs the rule looks at; empty means every program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_programs: Option<Vec<String>>,
    /// Months after the month of death or moving out still tolerated (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_months: Option<i32>,
    /// A vehicle whose type contains one of these is not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt_vehicle_types: Option<Vec<String>>,
    /// The roles in a company that count (contained in the register's 身份).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_roles: Option<Vec<String>>,
    /// Building area in m² above which property counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_area_m2: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<[String; 2]>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<Vec<Band>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ages: Option<Vec<AgeRange>>,
    /// How many households one account may be paid for before it is a finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_households: Option<i64>,
}

/// One rule as staff read and edit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    pub description: String,
    pub legal_basis: String,
    pub severity: Severity,
    pub enabled: bool,
    #[serde(default)]
    pub params: Params,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

/// What is wrong with an edited document, in Chinese for the staff member who edited it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(pub String);

/// Which parameters a rule reads, and which of those it cannot do without.
struct Needs {
    optional: &'static [&'static str],
    required: &'static [&'static str],
}

impl RuleId {
    fn needs(self) -> Needs {
        let (optional, required): (&[&str], &[&str]) = match self {
            RuleId::PaidAfterDeath | RuleId::PaidAfterMovingOut => {
                (&["programs", "grace_months"], &[])
            }
            RuleId::PublicEmployee => (&[], &["programs", "household_programs"]),
            RuleId::CadreFavoritism => (&[], &["programs"]),
            RuleId::VehicleOwner => (&["exempt_vehicle_types"], &["programs"]),
            RuleId::CompanyOwner => (&[], &["programs", "company_roles"]),
            RuleId::PropertyOwner => (&[], &["programs", "min_area_m2"]),
            RuleId::PaidTwice => (&["programs"], &[]),
            RuleId::ExclusivePrograms => (&[], &["pairs"]),
            RuleId::GrantRepeated => (&[], &["programs"]),
            RuleId::AboveStandard => (&["programs", "bands"], &[]),
            RuleId::AgeOutOfRange => (&[], &["ages"]),
            RuleId::SharedBankAccount => (&[], &["min_households"]),
        };
        Needs { optional, required }
    }
}

impl Params {
    /// The names of the parameters that are set.
    fn present(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let mut mark = |name, present: bool| {
            if present {
                set.push(name);
            }
        };
        mark("programs", self.programs.is_some());
        mark("household_programs", self.household_programs.is_some());
        mark("grace_months", self.grace_months.is_some());
        mark("exempt_vehicle_types", self.exempt_vehicle_types.is_some());
        mark("company_roles", self.company_roles.is_some());
        mark("min_area_m2", self.min_area_m2.is_some());
        mark("pairs", self.pairs.is_some());
        mark("bands", self.bands.is_some());
        mark("ages", self.ages.is_some());
        mark("min_households", self.min_households.is_some());
        set
    }

    /// Every program code the parameters name.
    fn program_codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = Vec::new();
        for list in [&self.programs, &self.household_programs]
            .into_iter()
            .flatten()
        {
            codes.extend(list.iter().map(String::as_str));
        }
        for pair in self.pairs.iter().flatten() {
            codes.extend(pair.iter().map(String::as_str));
        }
        codes.extend(self.bands.iter().flatten().map(|b| b.program.as_str()));
        codes.extend(self.ages.iter().flatten().map(|a| a.program.as_str()));
        codes
    }
}

/// The built-in rules (博白县's defaults), as shipped.
pub const DEFAULT_RULES_JSON: &str = include_str!("default_rules.json");

/// The built-in rules, checked by the same parser as an edit (against no program list:
/// the catalogue is checked when they are stored).
pub fn default_rules() -> RuleSet {
    parse_rules(DEFAULT_RULES_JSON, None).expect("the built-in rules are valid")
}

/// Reads and validates a rules document. With `programs`, every program code it names must
/// exist in the catalogue.
pub fn parse_rules(
    json: &str,
    programs: Option<&HashMap<String, Program>>,
) -> Result<RuleSet, RulesError> {
    let set: RuleSet =
        serde_json::from_str(json).map_err(|e| RulesError(format!("规则文档格式错误：{e}")))?;
    validate(&set, programs)?;
    Ok(set)
}

fn validate(set: &RuleSet, programs: Option<&HashMap<String, Program>>) -> Result<(), RulesError> {
    let mut seen = HashSet::new();
    for rule in &set.rules {
        let id = rule.id.as_str();
        if !seen.insert(rule.id) {
            return Err(RulesError(format!("规则 {id} 出现了两次")));
        }
        if rule.name.trim().is_empty() || rule.description.trim().is_empty() {
            return Err(RulesError(format!("规则 {id} 的名称和说明不能为空")));
        }
        if rule.legal_basis.trim().is_empty() {
            return Err(RulesError(format!("规则 {id} 须写明依据")));
        }
        let needs = rule.id.needs();
        for name in rule.params.present() {
            if !needs.optional.contains(&name) && !needs.required.contains(&name) {
                return Err(RulesError(format!("规则 {id} 不使用参数 {name}")));
            }
        }
        for name in needs.required {
            if !rule.params.present().contains(name) {
                return Err(RulesError(format!("规则 {id} 缺少参数 {name}")));
            }
        }
        let p = &rule.params;
        if p.grace_months.is_some_and(|m| !(0..=24).contains(&m)) {
            return Err(RulesError(format!("规则 {id} 的宽限月数应在0到24之间")));
        }
        if p.min_area_m2.is_some_and(|a| !(1..=100_000).contains(&a)) {
            return Err(RulesError(format!(
                "规则 {id} 的面积门槛应为1到100000平方米"
            )));
        }
        if p.min_households.is_some_and(|n| !(2..=1000).contains(&n)) {
            return Err(RulesError(format!("规则 {id} 的户数门槛应在2到1000之间")));
        }
        for band in p.bands.iter().flatten() {
            if band.max_fen <= 0
                || band.min_age < 0
                || band.max_age.is_some_and(|m| m < band.min_age)
            {
                return Err(RulesError(format!(
                    "规则 {id} 中项目 {} 的档次不正确（年龄范围或金额）",
                    band.program
                )));
            }
        }
        for range in p.ages.iter().flatten() {
            let bad = match (range.min_age, range.max_age) {
                (None, None) => true,
                (Some(lo), Some(hi)) => lo > hi || lo < 0,
                (Some(lo), None) => lo < 0,
                (None, Some(hi)) => hi < 0,
            };
            if bad {
                return Err(RulesError(format!(
                    "规则 {id} 中项目 {} 的年龄范围不正确",
                    range.program
                )));
            }
        }
        for pair in p.pairs.iter().flatten() {
            if pair[0] == pair[1] {
                return Err(RulesError(format!("规则 {id} 的互斥项目不能是同一个")));
            }
        }
        if let Some(catalogue) = programs {
            for code in p.program_codes() {
                if !catalogue.contains_key(code) {
                    return Err(RulesError(format!("规则 {id} 中的项目代码 {code} 不存在")));
                }
            }
        }
    }
    Ok(())
}

impl RuleSet {
    pub fn enabled(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("rules serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_name_every_rule_once() {
        let rules = default_rules();
        let ids: Vec<RuleId> = rules.rules.iter().map(|r| r.id).collect();
        assert_eq!(ids, RuleId::ALL);
        assert_eq!(
            RuleId::ALL.map(|r| RuleId::parse(r.as_str())),
            RuleId::ALL.map(Some)
        );
    }

    #[test]
    fn edits_are_checked_before_they_count() {
        let edit = |from: &str, to: &str| {
            let json = DEFAULT_RULES_JSON.replacen(from, to, 1);
            assert_ne!(json, DEFAULT_RULES_JSON, "{from} is in the defaults");
            parse_rules(&json, None).map(|_| ()).map_err(|e| e.0)
        };
        assert!(edit("\"min_area_m2\": 150", "\"min_area_m2\": 120").is_ok());
        let missing = edit("\"min_area_m2\": 150", "\"min_area\": 150").expect_err("refused");
        assert!(missing.contains("格式错误"), "{missing}");
        let foreign = edit(
            "\"min_households\": 2",
            "\"min_households\": 2, \"programs\": []",
        )
        .expect_err("refused");
        assert_eq!(foreign, "规则 shared_bank_account 不使用参数 programs");
        let unknown =
            edit("\"id\": \"paid_twice\"", "\"id\": \"paid_thrice\"").expect_err("refused");
        assert!(unknown.contains("格式错误"), "{unknown}");
        let bad_band = edit("\"max_age\": 89", "\"max_age\": 70").expect_err("refused");
        assert!(bad_band.contains("ELDERLY"), "{bad_band}");
    }

    #[test]
    fn program_codes_must_exist_when_stored() {
        let err = parse_rules(DEFAULT_RULES_JSON, Some(&HashMap::new())).expect_err("refused");
        assert!(err.0.contains("项目代码"), "{err}");
    }
}
