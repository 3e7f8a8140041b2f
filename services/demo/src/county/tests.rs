//! Tests of the synthetic population: its shape, its facts, its determinism.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use chrono::Datelike as _;

use super::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

/// 28 towns of 12 or 13 villages, coded like the divisions migration.
fn villages() -> Vec<Village> {
    (0..358)
        .map(|i| {
            let town = format!("450923{:03}", 100 + i % 28);
            Village {
                code: format!("{town}{:03}", 201 + i / 28),
                town_code: town,
            }
        })
        .collect()
}

#[test]
fn same_seed_gives_the_same_households() {
    let villages = villages();
    let a: Vec<_> = households(&villages, 500, 7, today()).take(20).collect();
    let b: Vec<_> = households(&villages, 500, 7, today()).take(20).collect();
    assert_eq!(a, b);
    let c = households(&villages, 500, 8, today()).next().unwrap();
    assert_ne!(a[0], c);
}

#[test]
fn the_stream_yields_exactly_the_target_in_households_of_one_to_six() {
    let villages = villages();
    let mut total = 0;
    let mut sizes = [0usize; 7];
    for household in households(&villages, 20_000, 1, today()) {
        let n = household.members.len();
        assert!((1..=6).contains(&n), "household of {n}");
        sizes[n] += 1;
        total += n;
        assert_eq!(household.members[0].relation, Relation::Head);
        assert!(household.code.starts_with(&household.village_code));
        assert_eq!(household.code.len(), 16);
    }
    assert_eq!(total, 20_000);
    let households: usize = sizes.iter().sum();
    let mean = total as f64 / households as f64;
    assert!((2.9..3.4).contains(&mean), "mean household size {mean}");
    assert!(sizes[1..].iter().all(|&n| n > 100), "sizes {sizes:?}");
}

#[test]
fn every_id_number_parses_and_is_unique() {
    let villages = villages();
    let mut seen = HashSet::new();
    for household in households(&villages, 50_000, 2, today()) {
        for person in household.members {
            let parsed = IdNumber::parse_as_of(person.id_number.expose(), today()).unwrap();
            assert_eq!(parsed.region_code(), "450923");
            assert!(seen.insert(parsed), "duplicate ID number");
        }
    }
    assert_eq!(seen.len(), 50_000);
}

#[test]
fn families_look_like_families() {
    let villages = villages();
    for household in households(&villages, 20_000, 3, today()) {
        let head = &household.members[0];
        let head_age = age(head, today());
        assert!((25..=85).contains(&head_age), "head aged {head_age}");
        let surname = head.name.chars().next().unwrap();
        for member in &household.members[1..] {
            assert!(member.name.chars().count() >= 2 && member.name.chars().count() <= 3);
            match member.relation {
                Relation::Spouse => {
                    assert_ne!(member.id_number.is_male(), head.id_number.is_male());
                    assert!(age(member, today()).abs_diff(head_age) <= 8);
                }
                Relation::Son | Relation::Daughter => {
                    assert_eq!(member.name.chars().next(), Some(surname));
                    assert_eq!(member.id_number.is_male(), member.relation == Relation::Son);
                    assert!(age(member, today()) + 21 <= head_age);
                }
                Relation::Parent => assert!(age(member, today()) >= head_age + 16),
                Relation::Grandchild => assert!(age(member, today()) + 44 <= head_age),
                Relation::Head => panic!("two heads in {}", household.code),
                Relation::Other => {}
            }
        }
    }
}

#[test]
fn facts_come_at_plausible_rates() {
    let villages = villages();
    let target = 200_000;
    let mut counts: HashMap<FactKind, usize> = HashMap::new();
    let mut cadres_per_village: HashMap<String, usize> = HashMap::new();
    for household in households(&villages, target, 4, today()) {
        for person in &household.members {
            for fact in &person.facts {
                *counts.entry(fact.kind).or_default() += 1;
                assert!(fact.since <= today());
                assert!(fact.since >= person.id_number.birth_date());
                if fact.kind == FactKind::VillageCadre {
                    assert_eq!(person.relation, Relation::Head);
                    *cadres_per_village
                        .entry(household.village_code.clone())
                        .or_default() += 1;
                }
            }
        }
    }
    let rate = |kind| counts.get(&kind).copied().unwrap_or(0) as f64 / target as f64;
    let expect = [
        (FactKind::Deceased, 0.004, 0.011),
        (FactKind::PublicEmployee, 0.006, 0.015),
        (FactKind::VehicleOwner, 0.045, 0.075),
        (FactKind::CompanyOwner, 0.006, 0.015),
        (FactKind::MovedOut, 0.006, 0.015),
    ];
    for (kind, low, high) in expect {
        let r = rate(kind);
        assert!((low..=high).contains(&r), "{} rate {r}", kind.as_str());
    }
    // Two cadre slots per village; a village that falls short of its slots has fewer.
    let cadres: usize = cadres_per_village.values().sum();
    assert!(cadres >= 2 * villages.len() * 9 / 10, "{cadres} cadres");
    assert!(cadres_per_village.values().all(|&n| n <= 2));
    assert!(rate(FactKind::CadreRelative) > 0.0);
}

#[test]
fn an_empty_county_yields_nothing() {
    assert_eq!(households(&[], 100, 1, today()).count(), 0);
}

fn age(person: &SynthPerson, today: NaiveDate) -> u32 {
    let birth = person.id_number.birth_date();
    let mut years = (today.year() - birth.year()) as u32;
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

#[test]
fn every_relation_is_a_term_identity_registers() {
    for relation in [
        Relation::Head,
        Relation::Spouse,
        Relation::Son,
        Relation::Daughter,
        Relation::Parent,
        Relation::Grandchild,
        Relation::Other,
    ] {
        assert!(
            huimin_identity::import::RELATIONS.contains(&relation.as_zh()),
            "{relation:?}"
        );
    }
}

#[test]
fn a_small_share_of_heads_own_property_mostly_under_150_square_metres() {
    let (mut owners, mut large, mut heads) = (0, 0, 0);
    for household in households(&villages(), 100_000, 4, today()) {
        heads += 1;
        for (i, person) in household.members.iter().enumerate() {
            for property in &person.properties {
                assert_eq!(i, 0, "only heads own property");
                assert!(property.since <= today());
                owners += 1;
                if property.area_centi_m2 > 15_000 {
                    large += 1;
                }
            }
        }
    }
    let share = f64::from(owners) / f64::from(heads);
    assert!((0.04..=0.08).contains(&share), "{share}");
    assert!(large > 0 && large * 3 < owners, "{large} of {owners} large");
}

#[test]
fn split_households_continue_the_villages_previous_household() {
    let mut splits = 0;
    let mut previous: HashMap<String, String> = HashMap::new();
    for household in households(&villages(), 100_000, 4, today()) {
        let head = &household.members[0];
        if let [past] = head.past_households.as_slice() {
            splits += 1;
            assert_eq!(
                Some(&past.household_code),
                previous.get(&household.village_code)
            );
            assert_eq!(past.since, head.id_number.birth_date());
            let split = head.member_since.unwrap();
            assert_eq!(past.until, split - Duration::days(1));
            assert!(split < today());
            for member in &household.members {
                assert_eq!(
                    member.member_since,
                    Some(split.max(member.id_number.birth_date()))
                );
            }
        } else {
            assert!(
                household
                    .members
                    .iter()
                    .all(|m| m.member_since.is_none() && m.past_households.is_empty())
            );
        }
        previous.insert(household.village_code.clone(), household.code.clone());
    }
    assert!((50..=2000).contains(&splits), "{splits} splits");
}
