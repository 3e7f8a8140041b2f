//! A new report among the earlier ones: which are about the same subject
//! (they count towards escalation) or the same village (shown to the
//! reader), how many independent reporters that makes, and so where the
//! report goes.

use chrono::NaiveDate;
use huimin_kit::county::County;
use sqlx::PgConnection;

use crate::{
    domain::Source,
    error::WhistleError,
    triage::{self, Rules, TriageResult},
};

/// The earlier reports a new one is linked to.
#[derive(Debug, Default)]
pub(super) struct Linked {
    /// Citizens' reports about the same subject within the window, by id.
    pub same_subject: Vec<i64>,
    /// Those and the recent reports about the same village, sorted.
    pub all: Vec<i64>,
    /// Independent reporters about the subject, the new report's included.
    pub independent: usize,
}

impl Linked {
    /// Reads the earlier reports received on or after `since`. Call with the
    /// writers' lock held, so two reports arriving together count each other.
    pub async fn find(
        tx: &mut PgConnection,
        subject_key: Option<&str>,
        village: Option<&str>,
        since: NaiveDate,
        reporter_openid: Option<&str>,
    ) -> Result<Self, WhistleError> {
        // Earlier reports about the same subject (person, project, named
        // official, or village and program): these count towards escalation.
        let earlier: Vec<(i64, bool, Option<String>)> = match subject_key {
            Some(key) => {
                sqlx::query_as(
                    "SELECT id, anonymous, reporter_openid FROM reports
                     WHERE subject_key = $1 AND received_on >= $2 AND source = $3 ORDER BY id",
                )
                .bind(key)
                .bind(since)
                .bind(Source::Citizen.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
            None => Vec::new(),
        };
        let independent = independent_reporters(
            earlier
                .iter()
                .map(|(_, anonymous, openid)| (*anonymous, openid.as_deref())),
            reporter_openid,
        );
        let same_subject: Vec<i64> = earlier.iter().map(|(id, _, _)| *id).collect();
        // For the reader, also the recent reports about the same village:
        // several reports about one village secretary rarely name him alike.
        let same_village: Vec<i64> = match village {
            Some(village) => {
                sqlx::query_scalar(
                    "SELECT id FROM reports WHERE subject_village = $1 AND received_on >= $2
                     AND NOT (id = ANY($3)) ORDER BY received_on DESC, id LIMIT 50",
                )
                .bind(village)
                .bind(since)
                .bind(&same_subject)
                .fetch_all(&mut *tx)
                .await?
            }
            None => Vec::new(),
        };
        let mut all: Vec<i64> = same_subject.iter().chain(&same_village).copied().collect();
        all.sort_unstable();
        Ok(Self {
            same_subject,
            all,
            independent,
        })
    }
}

/// How many independent reporters wrote `earlier` (each `(anonymous,
/// openid)`) and the new report: each anonymous report counts, a real-name
/// reporter counts once however often they write.
fn independent_reporters<'a>(
    earlier: impl IntoIterator<Item = (bool, Option<&'a str>)>,
    this_reporter: Option<&str>,
) -> usize {
    let mut reporters: Vec<Option<&str>> = Vec::new();
    for (anonymous, openid) in earlier {
        let who = if anonymous { None } else { openid };
        if who.is_none() || !reporters.contains(&who) {
            reporters.push(who);
        }
    }
    reporters.len() + usize::from(this_reporter.is_none() || !reporters.contains(&this_reporter))
}

/// Where a new report goes and how urgent it is.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Routing {
    pub department: String,
    /// 1 (highest) to 4, as stored.
    pub priority: i32,
    /// Enough independent citizens wrote about the subject: the report (and
    /// the earlier ones) go to the county's discipline commission, first.
    pub escalated: bool,
}

impl Routing {
    pub fn decide(
        rules: &Rules,
        triage: &TriageResult,
        source: Source,
        linked: &Linked,
        county: &County,
    ) -> Self {
        let escalated =
            source == Source::Citizen && triage::should_escalate(rules, linked.independent);
        if escalated {
            Self {
                department: county.commission().to_owned(),
                priority: i32::from(triage::PRIORITY_HIGHEST),
                escalated,
            }
        } else {
            Self {
                department: triage.department.clone(),
                priority: i32::from(triage.priority),
                escalated,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use huimin_kit::config::Env;

    use super::*;
    use crate::triage::default_rules;

    #[test]
    fn a_real_name_reporter_counts_once_and_each_anonymous_report_counts() {
        let earlier = [
            (false, Some("o-alice")),
            (false, Some("o-alice")),
            (true, None),
            (true, None),
        ];

        assert_eq!(independent_reporters(earlier, Some("o-alice")), 3);
        assert_eq!(independent_reporters(earlier, Some("o-bob")), 4);
        assert_eq!(independent_reporters(earlier, None), 4);
        assert_eq!(independent_reporters([], None), 1);
    }

    fn routed(source: Source, independent: usize, county: &County) -> Routing {
        let rules = default_rules();
        let triage = triage::triage(&rules, "危房改造补助没有到账", None, &Default::default());
        let linked = Linked {
            independent,
            ..Linked::default()
        };
        Routing::decide(&rules, &triage, source, &linked, county)
    }

    #[test]
    fn escalation_goes_to_the_configured_commission() {
        let rong = County::from_env(&Env::from_pairs([
            ("HUIMIN_COUNTY_CODE", "450921"),
            ("HUIMIN_COUNTY_NAME", "容县"),
            ("HUIMIN_COUNTY_COMMISSION", "容县纪委监委"),
        ]))
        .expect("valid county");

        let bobai = routed(Source::Citizen, 3, &County::default());
        let moved = routed(Source::Citizen, 3, &rong);

        assert_eq!(
            (bobai.department.as_str(), bobai.priority, bobai.escalated),
            ("博白县纪委监委", 1, true)
        );
        assert_eq!(
            (moved.department.as_str(), moved.priority, moved.escalated),
            ("容县纪委监委", 1, true)
        );
    }

    #[test]
    fn below_the_threshold_or_from_a_system_the_triage_decides() {
        let county = County::default();

        let second = routed(Source::Citizen, 2, &county);
        let finding = routed(Source::System, 7, &county);

        assert!(!second.escalated && !finding.escalated);
        assert_eq!(second.priority, 2);
        assert_eq!(finding, second, "a cross-check finding never escalates");
    }
}
