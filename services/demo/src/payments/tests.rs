//! Tests of the payment plan: volumes, periods, amounts and the planted irregularities.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use chrono::Duration;

use super::*;

const FIRST_YEAR: i32 = 2017;

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn last_period() -> NaiveDate {
    date(2026, 10, 1)
}

fn program(code: &str, period_kind: &str, standard: i64, ceiling: i64) -> SeedProgram {
    SeedProgram {
        code: code.to_owned(),
        period_kind: PeriodKind::from_stored(period_kind).unwrap(),
        standard_fen: standard,
        ceiling_fen: ceiling,
        per_household: matches!(code, "FARMLAND" | "FOREST_ECO" | "HOUSE_RENOVATION"),
    }
}

/// The programs of migrations/0002_programs_seed.sql.
fn programs() -> Vec<SeedProgram> {
    vec![
        program("DIBAO_RURAL", "monthly", 30_000, 44_000),
        program("DIBAO_URBAN", "monthly", 50_000, 85_000),
        program("TEKUN", "monthly", 57_200, 150_000),
        program("DISABILITY_LIVING", "monthly", 9_000, 10_000),
        program("DISABILITY_NURSING", "monthly", 9_000, 12_000),
        program("ELDERLY", "monthly", 5_000, 50_000),
        program("FARMLAND", "yearly", 50_000, 500_000),
        program("FOREST_ECO", "yearly", 48_000, 320_000),
        program("YULU", "yearly", 300_000, 300_000),
        program("PENSION_RURAL", "monthly", 16_300, 30_000),
        program("ORPHAN", "monthly", 130_000, 180_000),
        program("FAMILY_PLANNING", "yearly", 96_000, 144_000),
        program("VETERAN_CARE", "quarterly", 300_000, 900_000),
        program("TEMP_RELIEF", "one_off", 100_000, 528_000),
        program("HOUSE_RENOVATION", "one_off", 2_000_000, 4_500_000),
    ]
}

/// A made-up population shaped like identity's: household sizes 1–6, heads mostly
/// middle-aged, some old parents, deaths in the last four years (≈ 0.7% of persons).
fn population(persons: usize, seed: u64) -> Vec<Vec<SeedPerson>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let today = last_period();
    let mut households = Vec::new();
    let mut count = 0;
    let mut key = 0u64;
    while count < persons {
        let serial = households.len();
        let village_code = format!("450923{:03}{:03}", 100 + serial % 28, 200 + serial % 17);
        let household_code = format!("{village_code}{:04}", serial % 9999 + 1);
        let size =
            [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6][rng.gen_range(0..20)];
        let head_age: i64 = match rng.gen_range(0..100) {
            0..15 => rng.gen_range(25..=34),
            15..35 => rng.gen_range(35..=44),
            35..60 => rng.gen_range(45..=54),
            60..80 => rng.gen_range(55..=64),
            80..93 => rng.gen_range(65..=74),
            _ => rng.gen_range(75..=85),
        };
        let mut ages = vec![head_age];
        if size > 1 && rng.gen_bool(0.8) {
            ages.push((head_age + rng.gen_range(-4..=4)).max(20));
        }
        if ages.len() < size && head_age <= 58 && rng.gen_bool(0.25) {
            ages.push((head_age + rng.gen_range(22..=34)).min(98));
        }
        let mut child = head_age - rng.gen_range(21..=32);
        while ages.len() < size {
            ages.push(child.max(0));
            child -= rng.gen_range(1..=4);
        }
        let members = ages
            .iter()
            .enumerate()
            .map(|(i, &age)| {
                key += 1;
                let mut person_key = [0; 32];
                person_key[..8].copy_from_slice(&key.to_be_bytes());
                let birth_date = today - Duration::days(age * 365 + rng.gen_range(0..365));
                let death_rate = match age {
                    0..60 => 0.002,
                    60..75 => 0.016,
                    _ => 0.06,
                };
                let deceased_since = rng.gen_bool(death_rate).then(|| {
                    let earliest = (today - Duration::days(4 * 365)).max(birth_date);
                    earliest + Duration::days(rng.gen_range(0..=(today - earliest).num_days()))
                });
                // The registers' facts at about the county's rates, from some past day.
                let since = today - Duration::days(rng.gen_range(100..3000));
                let mut holds = Vec::new();
                for (holding, rate, ages) in [
                    (Holding::PublicEmployee, 0.0165, 22..61),
                    (Holding::VehicleOwner, 0.08, 20..73),
                    (Holding::VillageCadre, 0.004, 30..66),
                ] {
                    if ages.contains(&age) && rng.gen_bool(rate) {
                        holds.push((holding, since));
                    }
                }
                let moved_out_since = (age >= 16 && rng.gen_bool(0.0117)).then_some(since);
                SeedPerson {
                    person_key,
                    name_masked: "陈*".to_owned(),
                    id_masked: format!("450923********{:04}", key % 10_000),
                    household_code: household_code.clone(),
                    village_code: village_code.clone(),
                    birth_date,
                    male: rng.gen_bool(0.5),
                    is_head: i == 0,
                    deceased_since,
                    moved_out_since,
                    member_since: None,
                    holds,
                }
            })
            .collect::<Vec<_>>();
        count += members.len();
        households.push(members);
    }
    households
}

struct Run {
    persons: HashMap<[u8; 32], SeedPerson>,
    rows: Vec<SeedPayment>,
    planted: Vec<Planted>,
}

fn run(persons: usize, seed: u64) -> Run {
    let households = population(persons, seed);
    let mut plan = PaymentPlan::new(programs(), FIRST_YEAR, last_period(), seed);
    let rows = households
        .iter()
        .flat_map(|members| plan.household_payments(members))
        .collect();
    Run {
        persons: households
            .into_iter()
            .flatten()
            .map(|person| (person.person_key, person))
            .collect(),
        rows,
        planted: plan.planted().to_vec(),
    }
}

/// The demo scale: 20,000 persons, generated once for the tests that only read it.
fn small() -> &'static Run {
    static SMALL: OnceLock<Run> = OnceLock::new();
    SMALL.get_or_init(|| run(20_000, 450_923))
}

fn ceiling(code: &str) -> i64 {
    programs()
        .into_iter()
        .find(|p| p.code == code)
        .unwrap()
        .ceiling_fen
}

#[test]
fn the_same_seed_gives_the_same_payments() {
    let (first, second, other) = (run(3_000, 7), run(3_000, 7), run(3_000, 8));
    assert_eq!(first.rows, second.rows);
    assert_eq!(first.planted, second.planted);
    assert_ne!(first.rows, other.rows);
}

#[test]
fn ten_years_come_to_about_ten_payments_per_person() {
    let small = small();
    let mut by_program: HashMap<&str, usize> = HashMap::new();
    for row in &small.rows {
        *by_program.entry(row.program_code.as_str()).or_default() += 1;
    }
    let mut counts: Vec<_> = by_program.into_iter().collect();
    counts.sort();
    println!("payments for 20,000 persons over 2017-01..2026-10: {counts:?}");
    println!("total {} (×100 for the county)", small.rows.len());
    assert!(
        (140_000..=260_000).contains(&small.rows.len()),
        "{} payments",
        small.rows.len()
    );
    assert!(!counts.iter().any(|(code, _)| *code == "PENSION_RURAL"));
}

#[test]
fn each_irregularity_is_planted_exactly_five_times() {
    let small = small();
    for kind in Irregularity::ALL {
        let planted: Vec<_> = small.planted.iter().filter(|p| p.0 == kind).collect();
        assert_eq!(planted.len(), PLANTED_PER_KIND, "{}", kind.as_str());
        let flagged = small
            .rows
            .iter()
            .filter(|row| row.irregularity == Some(kind))
            .count();
        let expected = match kind {
            Irregularity::PaidAfterDeath => 2 * PLANTED_PER_KIND..=3 * PLANTED_PER_KIND,
            Irregularity::PaidAfterMovingOut => 2 * PLANTED_PER_KIND..=2 * PLANTED_PER_KIND,
            Irregularity::PublicEmployeeOnDibao
            | Irregularity::CadreOnDibao
            | Irregularity::VehicleOwnerOnDibao
            | Irregularity::ElderlyUnderAge => 3 * PLANTED_PER_KIND..=3 * PLANTED_PER_KIND,
            _ => PLANTED_PER_KIND..=PLANTED_PER_KIND,
        };
        assert!(
            expected.contains(&flagged),
            "{} rows {flagged}",
            kind.as_str()
        );
        for (_, person_key, program, period) in planted {
            assert!(small.rows.iter().any(|row| row.irregularity == Some(kind)
                && row.person_key == *person_key
                && row.program_code == *program
                && row.period == *period));
        }
    }
    // One irregularity per household at most, so each stands out on its own.
    let households: HashSet<_> = small
        .rows
        .iter()
        .filter(|row| row.irregularity.is_some())
        .map(|row| row.household_code.as_str())
        .collect();
    assert_eq!(households.len(), Irregularity::ALL.len() * PLANTED_PER_KIND);
}

#[test]
fn nobody_is_paid_after_death_except_where_planted() {
    let small = small();
    let mut late = 0;
    for row in &small.rows {
        let person = &small.persons[&row.person_key];
        if person
            .deceased_since
            .is_some_and(|death| row.period_start > death)
        {
            assert_eq!(
                row.irregularity,
                Some(Irregularity::PaidAfterDeath),
                "{row:?}"
            );
            late += 1;
        }
        assert!(row.period_start >= person.birth_date, "{row:?}");
    }
    assert!(late >= 2 * PLANTED_PER_KIND);
}

#[test]
fn amounts_stay_within_the_ceiling_except_where_planted() {
    for row in &small().rows {
        assert!(row.amount_fen > 0);
        let above = row.amount_fen > ceiling(&row.program_code);
        assert_eq!(
            above,
            row.irregularity == Some(Irregularity::AboveStandard),
            "{row:?}"
        );
    }
}

#[test]
fn a_person_is_paid_once_a_period_unless_planted_twice() {
    let mut seen = HashSet::new();
    for row in &small().rows {
        let first = seen.insert((row.person_key, &row.program_code, &row.period));
        assert_eq!(
            !first,
            row.irregularity == Some(Irregularity::TwiceInOnePeriod),
            "{row:?}"
        );
    }
}

#[test]
fn periods_read_like_their_kind() {
    let kinds: HashMap<_, _> = programs()
        .into_iter()
        .map(|p| (p.code, p.period_kind))
        .collect();
    let mut seen_kinds = HashSet::new();
    for row in &small().rows {
        let start = row.period_start;
        let expected = match kinds[&row.program_code] {
            PeriodKind::Monthly => format!("{}-{:02}", start.year(), start.month()),
            PeriodKind::Quarterly => {
                assert_eq!(start.month() % 3, 1);
                format!("{}-Q{}", start.year(), start.month() / 3 + 1)
            }
            PeriodKind::Yearly | PeriodKind::OneOff => {
                assert_eq!(start.month(), 1);
                start.year().to_string()
            }
        };
        assert_eq!(row.period, expected);
        assert_eq!(start.day(), 1);
        assert!(
            (date(FIRST_YEAR, 1, 1)..=last_period()).contains(&start),
            "{row:?}"
        );
        seen_kinds.insert(kinds[&row.program_code]);
    }
    assert_eq!(seen_kinds.len(), 4, "every period kind is exercised");
}

#[test]
fn a_household_keeps_one_bank_account() {
    let mut accounts: HashMap<&str, &str> = HashMap::new();
    for row in &small().rows {
        let account = accounts
            .entry(&row.household_code)
            .or_insert(&row.bank_masked);
        assert_eq!(*account, row.bank_masked);
        assert_eq!(row.bank_masked.chars().count(), 16);
        assert_eq!(&row.bank_masked[4..12], "********");
    }
}

#[test]
fn rural_dibao_pays_in_steps_of_ten_yuan() {
    let dibao = small()
        .rows
        .iter()
        .filter(|row| row.program_code == "DIBAO_RURAL");
    for row in dibao.filter(|row| row.irregularity.is_none()) {
        assert_eq!(row.amount_fen % 1000, 0, "{row:?}");
    }
}

#[test]
fn a_clean_plan_plants_nothing_and_pays_no_means_tested_help_to_a_ruled_out_household() {
    let households = population(20_000, 450_923);
    let mut plan = PaymentPlan::new(programs(), FIRST_YEAR, last_period(), 450_923).clean();
    let ruled_out: HashSet<&str> = households
        .iter()
        .filter(|members| members.iter().any(|m| !m.holds.is_empty()))
        .map(|members| members[0].household_code.as_str())
        .collect();
    let mut means_tested = 0;
    for members in &households {
        for row in plan.household_payments(members) {
            assert_eq!(row.irregularity, None);
            if ["DIBAO_RURAL", "TEKUN", "HOUSE_RENOVATION"].contains(&row.program_code.as_str()) {
                means_tested += 1;
                assert!(!ruled_out.contains(row.household_code.as_str()), "{row:?}");
            }
        }
    }
    assert!(plan.planted().is_empty());
    assert!(!ruled_out.is_empty() && means_tested > 1000);
}
