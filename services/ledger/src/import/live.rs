//! The checks against payments already made, read once per program and
//! matched in memory.

use std::collections::HashMap;

use crate::{
    LedgerError,
    domain::{EntryKind, PeriodKind, RollKind},
    programs::Program,
};

use super::{Checked, Problems};

/// A payment already made and not reversed.
#[derive(sqlx::FromRow)]
pub(super) struct Live {
    id: i64,
    roll_id: i64,
    person_key: Vec<u8>,
    household_code: String,
    program_code: String,
    period: String,
    amount_fen: i64,
}

/// Up to this many rows a roll's live payments are looked up by its persons
/// and households (their indexes); a bigger roll reads its periods whole.
const BY_PERSON_UP_TO: usize = 10_000;

const LIVE: &str =
    "SELECT p.id, p.roll_id, p.person_key, p.household_code, p.program_code, p.period, p.amount_fen
     FROM payments p
     WHERE p.program_code = $1 AND ($2::text[] IS NULL OR p.period = ANY($2))
       AND p.kind = 'payment'
       AND NOT EXISTS (SELECT 1 FROM payments r WHERE r.reverses = p.id)";

/// The live payments the roll's checks need: of each program it pays, in
/// the periods it pays (every period for a one-off per-household program,
/// which a household gets once ever), of the roll's persons and households.
/// A small roll (a correction, say) finds them by person and household; a
/// big one reads the slot index's range of each program and period, which
/// costs less than a probe per row.
pub(super) async fn live_payments(
    tx: &mut sqlx::PgConnection,
    checked: &[Checked],
    programs: &HashMap<String, Program>,
) -> Result<Vec<Live>, LedgerError> {
    let mut by_program: HashMap<&str, Vec<&Checked>> = HashMap::new();
    for c in checked {
        by_program
            .entry(c.entry.program.as_str())
            .or_default()
            .push(c);
    }
    let mut live = Vec::new();
    for (program, rows) in by_program {
        let every_period = programs
            .get(program)
            .is_some_and(|p| p.per_household && p.period_kind == PeriodKind::OneOff);
        let periods: Option<Vec<&str>> = (!every_period).then(|| {
            let distinct: std::collections::BTreeSet<&str> =
                rows.iter().map(|c| c.entry.period.text()).collect();
            distinct.into_iter().collect()
        });
        let found: Vec<Live> = if checked.len() <= BY_PERSON_UP_TO {
            let persons: Vec<&[u8]> = rows
                .iter()
                .map(|c| c.person_key.as_bytes().as_slice())
                .collect();
            let households: Vec<&str> = rows.iter().map(|c| c.household_code.as_str()).collect();
            sqlx::query_as(&format!(
                "{LIVE} AND (p.person_key = ANY($3) OR p.household_code = ANY($4)) ORDER BY p.id"
            ))
            .bind(program)
            .bind(periods)
            .bind(persons)
            .bind(households)
            .fetch_all(&mut *tx)
            .await?
        } else {
            sqlx::query_as(&format!("{LIVE} ORDER BY p.id"))
                .bind(program)
                .bind(periods)
                .fetch_all(&mut *tx)
                .await?
        };
        live.extend(found);
    }
    Ok(live)
}

/// The checks against payments already made: a slot paid already (unless
/// the file reverses it), a per-household program the household had, a
/// reversal without a live payment to cancel. Returns, per entry, the
/// payment a reversal cancels.
pub(super) fn check_against_live(
    roll_kind: RollKind,
    checked: &[Checked],
    programs: &HashMap<String, Program>,
    live: &[Live],
    problems: &mut Problems,
) -> Vec<Option<i64>> {
    let mut reverses = vec![None; checked.len()];
    if live.is_empty() && checked.iter().all(|c| c.entry.kind == EntryKind::Payment) {
        return reverses;
    }
    let one_off = |program: &str| {
        programs
            .get(program)
            .is_some_and(|p| p.period_kind == PeriodKind::OneOff)
    };
    // What the file itself reverses.
    let mut reversed_slots = std::collections::HashSet::new();
    let mut reversed_households = std::collections::HashSet::new();
    for c in checked
        .iter()
        .filter(|c| c.entry.kind == EntryKind::Reversal)
    {
        reversed_slots.insert((
            c.person_key.as_bytes().as_slice(),
            c.entry.program.as_str(),
            c.entry.period.text(),
        ));
        reversed_households.insert((c.household_code.as_str(), c.entry.program.as_str()));
    }
    let mut by_slot: HashMap<(&[u8], &str, &str), Vec<&Live>> = HashMap::new();
    let mut by_household: HashMap<(&str, &str), Vec<&Live>> = HashMap::new();
    for p in live {
        by_slot
            .entry((
                p.person_key.as_slice(),
                p.program_code.as_str(),
                p.period.as_str(),
            ))
            .or_default()
            .push(p);
        by_household
            .entry((p.household_code.as_str(), p.program_code.as_str()))
            .or_default()
            .push(p);
    }

    for c in checked
        .iter()
        .filter(|c| c.entry.kind == EntryKind::Payment)
    {
        let slot = (
            c.person_key.as_bytes().as_slice(),
            c.entry.program.as_str(),
            c.entry.period.text(),
        );
        if let Some(paid) = by_slot.get(&slot).and_then(|p| p.first())
            && !reversed_slots.contains(&slot)
            && roll_kind.refuses_breaches()
        {
            problems.add(
                c.entry.line,
                "发放期间",
                format!("该人员本期已发放（第{}批），如需更正请先冲正", paid.roll_id),
            );
        }
    }
    for c in checked
        .iter()
        .filter(|c| c.entry.kind == EntryKind::Payment)
    {
        let program = c.entry.program.as_str();
        if !programs.get(program).is_some_and(|p| p.per_household) {
            continue;
        }
        let household = (c.household_code.as_str(), program);
        let had = by_household.get(&household).is_some_and(|paid| {
            paid.iter()
                .any(|p| one_off(program) || p.period == c.entry.period.text())
        });
        if had && !reversed_households.contains(&household) && roll_kind.refuses_breaches() {
            problems.add(
                c.entry.line,
                "项目代码",
                "该户已享受过此项目，每户只能享受一次",
            );
        }
    }
    // Each reversal cancels the earliest live payment of the same person,
    // program, period and amount that no other reversal of the file took.
    let mut taken = std::collections::HashSet::new();
    for (n, c) in checked.iter().enumerate() {
        if c.entry.kind != EntryKind::Reversal {
            continue;
        }
        let slot = (
            c.person_key.as_bytes().as_slice(),
            c.entry.program.as_str(),
            c.entry.period.text(),
        );
        let target = by_slot.get(&slot).and_then(|paid| {
            paid.iter()
                .find(|p| p.amount_fen == c.entry.amount && !taken.contains(&p.id))
        });
        match target {
            Some(p) => {
                taken.insert(p.id);
                reverses[n] = Some(p.id);
            }
            None => problems.add(
                c.entry.line,
                "类型",
                "未找到可冲正的原发放记录（人员、项目、期间、金额须一致）",
            ),
        }
    }
    reverses
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use huimin_kit::pii::{IdNumber, PersonKey};

    use super::*;
    use crate::{domain::Period, import::Entry};

    fn program(code: &str, period_kind: PeriodKind, per_household: bool) -> (String, Program) {
        let program = Program {
            code: code.to_owned(),
            name: code.to_owned(),
            department: "博白县民政局".to_owned(),
            period_kind,
            standard_fen: 10_000,
            ceiling_fen: 100_000,
            per_household,
            legal_basis: String::new(),
            eligibility: String::new(),
            active: true,
        };
        (code.to_owned(), program)
    }

    fn programs() -> HashMap<String, Program> {
        HashMap::from([
            program("DIBAO_RURAL", PeriodKind::Monthly, false),
            program("HOUSE_RENOVATION", PeriodKind::OneOff, true),
        ])
    }

    fn entry(line: usize, person: u8, program: &str, period: &str, kind: EntryKind) -> Checked {
        let period_kind = if program == "DIBAO_RURAL" {
            PeriodKind::Monthly
        } else {
            PeriodKind::OneOff
        };
        Checked {
            entry: Entry {
                line,
                kind,
                id_number: IdNumber::from_parts(
                    "450923",
                    NaiveDate::from_ymd_opt(1950, 1, 1).expect("date"),
                    u16::from(person),
                ),
                name: "庞秀英".to_owned(),
                village_code: "450923106201".to_owned(),
                program: program.to_owned(),
                period: Period::parse(period_kind, period).expect("period"),
                amount: 17_000,
                bank_masked: String::new(),
                bank_hash: None,
            },
            person_key: PersonKey::from_bytes([person; 32]),
            id_masked: String::new(),
            household_code: format!("H-{person}"),
        }
    }

    fn live(id: i64, person: u8, program: &str, period: &str) -> Live {
        Live {
            id,
            roll_id: 1,
            person_key: vec![person; 32],
            household_code: format!("H-{person}"),
            program_code: program.to_owned(),
            period: period.to_owned(),
            amount_fen: 17_000,
        }
    }

    fn lines(problems: &Problems) -> Vec<String> {
        problems.listed().iter().map(|p| p.field()).collect()
    }

    #[test]
    fn a_paid_slot_is_refused_unless_the_file_reverses_it() {
        let paid = [live(10, 1, "DIBAO_RURAL", "2026-07")];
        let repaid = [entry(2, 1, "DIBAO_RURAL", "2026-07", EntryKind::Payment)];
        let corrected = [
            entry(2, 1, "DIBAO_RURAL", "2026-07", EntryKind::Reversal),
            entry(3, 1, "DIBAO_RURAL", "2026-07", EntryKind::Payment),
        ];

        let mut refused = Problems::default();
        check_against_live(
            RollKind::PreCheck,
            &repaid,
            &programs(),
            &paid,
            &mut refused,
        );
        let mut allowed = Problems::default();
        let reverses = check_against_live(
            RollKind::PreCheck,
            &corrected,
            &programs(),
            &paid,
            &mut allowed,
        );

        assert_eq!(lines(&refused), ["第2行/发放期间"]);
        assert_eq!(allowed.total(), 0);
        assert_eq!(reverses, [Some(10), None]);
    }

    #[test]
    fn two_reversals_cancel_two_payments_not_one_twice() {
        let paid = [
            live(10, 1, "DIBAO_RURAL", "2026-07"),
            live(11, 1, "DIBAO_RURAL", "2026-07"),
        ];
        let file = [
            entry(2, 1, "DIBAO_RURAL", "2026-07", EntryKind::Reversal),
            entry(3, 1, "DIBAO_RURAL", "2026-07", EntryKind::Reversal),
            entry(4, 1, "DIBAO_RURAL", "2026-07", EntryKind::Reversal),
        ];

        let mut problems = Problems::default();
        let reverses =
            check_against_live(RollKind::PreCheck, &file, &programs(), &paid, &mut problems);

        assert_eq!(reverses, [Some(10), Some(11), None]);
        assert_eq!(
            lines(&problems),
            ["第4行/类型"],
            "the third has nothing left"
        );
    }

    #[test]
    fn a_one_off_household_grant_is_refused_in_any_period() {
        let paid = [live(10, 1, "HOUSE_RENOVATION", "2019")];
        let file = [entry(2, 1, "HOUSE_RENOVATION", "2026", EntryKind::Payment)];

        let mut problems = Problems::default();
        check_against_live(RollKind::PreCheck, &file, &programs(), &paid, &mut problems);

        assert_eq!(lines(&problems), ["第2行/项目代码"]);
    }
}
