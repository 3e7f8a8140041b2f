//! The synthetic county against the cross-checks: every irregularity `huimin seed` plants
//! is found by the rule meant to find it, and the same county seeded clean yields nothing.

use huimin_demo::{
    payments::Irregularity,
    seed::{self, Scale},
};
use huimin_kit::config::Env;

use crate::helpers::{drop_database, fresh_database, random_keys, redis_url};

/// Seeds a fresh database's county (planted or clean); its findings as
/// `(rule, person key, program)` of open findings, and the planted irregularities.
async fn seeded(
    clean: bool,
) -> (
    Vec<(String, Vec<u8>, String)>,
    Vec<huimin_demo::payments::Planted>,
) {
    let (base, name) = fresh_database().await;
    let server = crate::helpers::database_url();
    let url = format!(
        "{}/{name}",
        &server[..server.rfind('/').expect("a URL with a database")]
    );
    let mut pairs: Vec<(&str, String)> = vec![
        ("DATABASE_URL", url),
        ("REDIS_URL", redis_url()),
        ("HUIMIN_REDIS_PREFIX", format!("{name}:")),
    ];
    pairs.extend(random_keys());
    let env = Env::from_pairs(pairs);
    let (identity, ledger) = huimin::commands::seed_services(&env).await.unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let county = seed::county(&identity, Scale::Small, today)
        .await
        .unwrap()
        .expect("an empty county");
    let payments = seed::payments(
        &identity,
        &ledger,
        Scale::Small,
        county.persons,
        today,
        clean,
    )
    .await
    .unwrap()
    .expect("no payments yet");
    // The history load leaves the table vacuumed, so the rules' index-only passes read no
    // heap page.
    let vacuumed: bool = sqlx::query_scalar(
        "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND relname = 'payments'",
    )
    .fetch_one(&ledger.pool)
    .await
    .unwrap();
    assert!(vacuumed, "payments not vacuumed after the history load");
    seed::checks(&identity, &ledger).await.unwrap();
    let findings: Vec<(String, Vec<u8>, String)> = sqlx::query_as(
        "SELECT rule_id, person_key, program_code FROM findings WHERE state = 'open'",
    )
    .fetch_all(&ledger.pool)
    .await
    .unwrap();
    ledger.pool.close().await;
    identity.pool.close().await;
    drop_database(&base, &name).await;
    (findings, payments.planted)
}

#[tokio::test]
async fn every_planted_irregularity_is_found_by_its_rule_and_a_clean_county_yields_none() {
    let (found, planted) = seeded(false).await;
    let (clean, nothing) = seeded(true).await;

    assert_eq!(planted.len(), Irregularity::ALL.len() * 5);
    for (kind, person_key, program, period) in &planted {
        let rule = kind.rule();
        let hit = found.iter().any(|(r, key, p)| {
            r == rule
                && (key.as_slice() == person_key.as_slice() || *kind == Irregularity::SharedAccount)
                && (p == program
                    || matches!(
                        kind,
                        Irregularity::DibaoWithTekun | Irregularity::SharedAccount
                    ))
        });
        assert!(
            hit,
            "{} of {program} {period} not found by {rule}",
            kind.as_str()
        );
    }
    let shared = found
        .iter()
        .filter(|(r, ..)| r == "shared_bank_account")
        .count();
    assert_eq!(shared, 5, "one finding per shared account");
    // Nothing but the plants: a plant trips no second rule.
    assert_eq!(found.len(), planted.len(), "findings: {found:?}");
    assert!(nothing.is_empty());
    assert_eq!(clean, Vec::new(), "a clean county yields no finding");
}
