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

mod matching;
mod rules;
mod store;
mod subject;

use serde::{Deserialize, Serialize};

use self::matching::{matching, normalise};
pub use self::{
    rules::{
        Category, Escalation, Keyword, PRIORITY_HIGHEST, PRIORITY_LOWEST, Rules, RulesError,
        default_rules, parse_rules, should_escalate,
    },
    subject::{Subject, subject_key},
};

/// How many levels urgent keywords may raise a report's priority.
const MAX_URGENT_RAISE: u8 = 2;

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
}
