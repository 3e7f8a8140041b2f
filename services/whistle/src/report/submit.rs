//! Submitting a report: checked, triaged on arrival, linked to earlier
//! reports about the same subject (escalating them together when enough
//! independent reporters wrote), stored with its photos, and audited.
//!
//! The handler runs the steps in order and holds the one transaction:
//! what may wait on a peer (identity's binding check, ledger's facts) or
//! on CPU (cleaning photos) happens before it begins, so the writers' lock
//! is held only for the linking and the writes. Each step is its own
//! function: [`link`] finds and counts earlier reports and decides the
//! routing, [`write`] stores the row and records the trail.

mod link;
mod write;

use chrono::NaiveDate;

use self::{
    link::{Linked, Routing},
    write::NewRow,
};
use super::{MAX_TEXT, NewReport, PhotoHome, Receipt, clean_photos_blocking, stamp, today};
use crate::{
    OUTBOX, Whistle,
    domain::Source,
    error::WhistleError,
    receipt,
    triage::{self, Rules, Subject, TriageResult},
};

impl Whistle {
    /// Files, triages and stores a report; returns the receipt, shown once.
    #[tracing::instrument(skip_all, fields(source = ?report.source))]
    pub async fn submit(&self, report: NewReport) -> Result<Receipt, WhistleError> {
        let text = checked_text(&report.text)?;
        let NewReport {
            source,
            category,
            subject,
            subject_official_town,
            photos,
            reporter_openid,
            ..
        } = report;
        let cleaned = clean_photos_blocking(photos, 0).await?;
        let anonymous = reporter_openid.is_none();
        // A citizen's anonymous report: its own trail waits for day's end.
        let hidden = anonymous && source == Source::Citizen;
        if let Some(openid) = &reporter_openid {
            self.check_bound(openid).await?;
        }
        let day = today();
        let received_at = stamp(anonymous, day);
        let rules = self.rules().await?;
        let place = Placement::of(
            &rules,
            &text,
            category.as_deref(),
            &subject,
            subject_official_town,
        );
        let facts = self.ledger_facts(&subject).await;
        let code = receipt::new_code();
        let receipt_hash = receipt::hash(&code).ok_or_else(|| {
            WhistleError::internal(anyhow::anyhow!("fresh receipt code does not hash"))
        })?;

        let mut tx = self.pool.begin().await?;
        OUTBOX.lock_writers(&mut tx).await?;
        let since = window_start(&rules, day);
        let linked = Linked::find(
            &mut tx,
            place.subject_key.as_deref(),
            subject.village_code.as_deref(),
            since,
            reporter_openid.as_deref(),
        )
        .await?;
        let routing = Routing::decide(&rules, &place.triage, source, &linked, &self.county);
        let (id, number) = write::fresh_identity(&mut tx, day).await?;
        let row = NewRow {
            id,
            number: &number,
            source,
            hidden,
            reporter_openid: reporter_openid.as_deref(),
            receipt_hash: &receipt_hash,
            text: &text,
            chosen_category: category.as_deref(),
            subject: &subject,
            place: &place,
            category_label: rules
                .category(&place.triage.category)
                .map_or("其他", |c| c.name_zh.as_str()),
            routing: &routing,
            linked: &linked.all,
            facts: &facts,
            received_at,
            day,
        };
        write::insert_report(&mut tx, &row).await?;
        let written = self
            .store_photos(&mut tx, id, &cleaned, day, PhotoHome::of(anonymous))
            .await?;
        // Files are written before the commit: remove them if it never comes.
        let finished = async {
            write::record_submission(
                &mut tx,
                &self.audit.key,
                &row,
                &linked,
                cleaned.len(),
                anonymous,
            )
            .await?;
            tx.commit().await?;
            Ok::<(), WhistleError>(())
        }
        .await;
        self.keep_if_committed(&written, finished).await?;
        let (category, priority, escalated) =
            (&place.triage.category, routing.priority, routing.escalated);
        // An anonymous report leaves no line at all: its id, category or
        // priority next to a log timestamp would date it, and so would a
        // line without fields among the lines of timed reports. The day's
        // seal logs how many were held.
        if !anonymous {
            tracing::info!(report_id = id, %category, priority, escalated, "report received");
        }
        Ok(Receipt {
            code,
            number,
            report_id: id,
        })
    }
}

/// The report's text, trimmed; refused when empty or too long.
fn checked_text(text: &str) -> Result<String, WhistleError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(WhistleError::invalid(
            "text",
            "请填写举报内容（不超过5000字）",
        ));
    }
    Ok(text.to_owned())
}

/// The first day of the escalation window that ends on `day`.
fn window_start(rules: &Rules, day: NaiveDate) -> NaiveDate {
    day - chrono::Days::new(u64::from(rules.escalation.window_days))
}

/// Where a report belongs, before any other report is looked at: its
/// triage, the key of its subject and the towns involved.
#[derive(Debug)]
pub(super) struct Placement {
    pub triage: TriageResult,
    pub subject_key: Option<String>,
    /// The town of the village the report is about.
    pub town_code: Option<String>,
    /// The town a named official serves in, which must not handle the report.
    pub official_town: Option<String>,
}

impl Placement {
    fn of(
        rules: &Rules,
        text: &str,
        chosen_category: Option<&str>,
        subject: &Subject,
        official_town: Option<String>,
    ) -> Self {
        let town_code = subject
            .village_code
            .as_deref()
            .and_then(|v| v.get(..9))
            .map(str::to_owned);
        // A named official serves where the report is about unless told
        // otherwise: the report must not go to that town either way.
        let official_town = match (official_town, &subject.official) {
            (Some(town), _) => Some(town),
            (None, Some(_)) => town_code.clone(),
            (None, None) => None,
        };
        Self {
            triage: triage::triage(rules, text, chosen_category, subject),
            subject_key: triage::subject_key(subject),
            town_code,
            official_town,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(
            checked_text("  村干部冒领低保 \n").ok().as_deref(),
            Some("村干部冒领低保")
        );
        assert!(checked_text(" \n ").is_err());
        assert!(checked_text(&"字".repeat(MAX_TEXT)).is_ok());
        assert!(checked_text(&"字".repeat(MAX_TEXT + 1)).is_err());
    }

    #[test]
    fn a_named_official_keeps_the_report_from_their_town() {
        let rules = triage::default_rules();
        let subject = Subject {
            village_code: Some("450923101201".to_owned()),
            official: Some("张三".to_owned()),
            ..Subject::default()
        };

        let implied = Placement::of(&rules, "村支书优亲厚友", None, &subject, None);
        let told = Placement::of(
            &rules,
            "村支书优亲厚友",
            None,
            &subject,
            Some("450923102".to_owned()),
        );

        assert_eq!(implied.town_code.as_deref(), Some("450923101"));
        assert_eq!(implied.official_town.as_deref(), Some("450923101"));
        assert_eq!(told.official_town.as_deref(), Some("450923102"));
        assert_eq!(
            implied.subject_key.as_deref(),
            Some("official:450923101201:张三")
        );
    }
}
