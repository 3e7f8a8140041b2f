//! Ledger lookups: real-name access, masked disclosure, totals, the cache
//! and its invalidation, Redis outages, and the resumable export.

use crate::helpers::app_with_residents;
use std::time::{Duration, Instant};

use huimin_kit::auth::Role;
use huimin_proto::{
    common::v1::PageRequest,
    identity::v1::BindOpenIdRequest,
    ledger::v1::{
        ExportPaymentsRequest, GroupBy, HouseholdPaymentsRequest, PersonPaymentsRequest,
        TotalsRequest, VillageDisclosureRequest,
    },
};
use tonic::Code;

use crate::{
    helpers::{Options, Resident, TestApp, authed, import_persons, persons_csv, residents},
    ledger_import::person_key,
    rolls::{RollRow, import_csv, villagers},
};

pub(crate) async fn bind(app: &TestApp, openid: &str, person: &Resident) {
    let request = BindOpenIdRequest {
        openid: openid.into(),
        id_number: person.id_number.expose().into(),
        name: person.name.clone(),
    };
    app.identity()
        .bind_open_id(authed(request, &app.token(Role::Gateway, None)))
        .await
        .unwrap();
}

pub(crate) async fn payments_as_citizen(
    app: &TestApp,
    openid: &str,
    person_key: &str,
) -> Result<Vec<i64>, tonic::Status> {
    let request = PersonPaymentsRequest {
        person_key: person_key.into(),
        openid: openid.into(),
        page: None,
    };
    app.ledger()
        .person_payments(authed(request, &app.token(Role::Gateway, None)))
        .await
        .map(|r| {
            r.into_inner()
                .payments
                .into_iter()
                .map(|p| p.amount_fen)
                .collect()
        })
}

#[tokio::test]
async fn a_bound_citizen_reads_her_own_and_her_households_payments_only() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[2], "DIBAO_RURAL", "2026-07", "300"),
        ],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let (grandma, son, neighbour) = (
        person_key(&app, &people[0]).await,
        person_key(&app, &people[1]).await,
        person_key(&app, &people[2]).await,
    );

    let own = payments_as_citizen(&app, "oWx-grandma", &grandma)
        .await
        .unwrap();
    let household_member = payments_as_citizen(&app, "oWx-grandma", &son)
        .await
        .unwrap();
    let other_household = payments_as_citizen(&app, "oWx-grandma", &neighbour)
        .await
        .unwrap_err();
    let unbound = payments_as_citizen(&app, "oWx-stranger", &grandma)
        .await
        .unwrap_err();
    let household = app
        .ledger()
        .household_payments(authed(
            HouseholdPaymentsRequest {
                household_code: "H-0001".into(),
                openid: "oWx-grandma".into(),
                page: None,
            },
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .payments;

    assert_eq!(own, [17_000]);
    assert_eq!(household_member, [17_000]);
    assert_eq!(other_household.code(), Code::PermissionDenied);
    assert_eq!(unbound.code(), Code::PermissionDenied);
    assert_eq!(household.len(), 2);
}

#[tokio::test]
async fn a_person_bound_a_moment_ago_is_seen_at_once() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[2], "DIBAO_RURAL", "2026-07", "300"),
        ],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let (grandma, neighbour) = (
        person_key(&app, &people[0]).await,
        person_key(&app, &people[2]).await,
    );
    // ledger now keeps what identity said of this openid a moment ago…
    payments_as_citizen(&app, "oWx-grandma", &grandma)
        .await
        .unwrap();
    let before = payments_as_citizen(&app, "oWx-grandma", &neighbour)
        .await
        .unwrap_err();

    // …under the openid's binding generation, which a new binding moves on.
    bind(&app, "oWx-grandma", &people[2]).await;
    let after = payments_as_citizen(&app, "oWx-grandma", &neighbour)
        .await
        .unwrap();

    assert_eq!(before.code(), Code::PermissionDenied);
    assert_eq!(after, [30_000]);
}

#[tokio::test]
async fn an_unbinding_counts_on_the_very_next_lookup() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "170"),
        ],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let (grandma, son) = (
        person_key(&app, &people[0]).await,
        person_key(&app, &people[1]).await,
    );
    // Both answers are now cached, in Redis and in this process's memory.
    for _ in 0..3 {
        payments_as_citizen(&app, "oWx-grandma", &grandma)
            .await
            .unwrap();
        payments_as_citizen(&app, "oWx-grandma", &son)
            .await
            .unwrap();
    }

    let removed = app
        .identity()
        .unbind_open_id(authed(
            huimin_proto::identity::v1::UnbindOpenIdRequest {
                openid: "oWx-grandma".into(),
                person_key: String::new(),
            },
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .removed;
    let own = payments_as_citizen(&app, "oWx-grandma", &grandma).await;
    let household = payments_as_citizen(&app, "oWx-grandma", &son).await;

    assert_eq!(removed, 1);
    assert_eq!(own.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(household.unwrap_err().code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_unbinding_redis_cannot_announce_fails_so_the_caller_retries() {
    let app = TestApp::spawn_with(Options {
        proxy_redis: true,
        ..Options::default()
    })
    .await;
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let unbind = || {
        let mut identity = app.identity();
        let request = authed(
            huimin_proto::identity::v1::UnbindOpenIdRequest {
                openid: "oWx-grandma".into(),
                person_key: String::new(),
            },
            &app.token(Role::Gateway, None),
        );
        async move { identity.unbind_open_id(request).await }
    };

    app.redis_proxy.as_ref().unwrap().cut();
    let while_cut = unbind().await;
    app.redis_proxy.as_ref().unwrap().restore();
    // The binding is gone already; the retry is what tells every replica.
    let mut retried = unbind().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while retried.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        retried = unbind().await;
    }

    assert_eq!(while_cut.unwrap_err().code(), Code::Unavailable);
    assert_eq!(retried.unwrap().into_inner().removed, 0);
}

#[tokio::test]
async fn a_town_officer_reads_payments_only_in_their_town() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    let key = person_key(&app, &people[0]).await;
    let read = |town: &'static str| {
        let request = PersonPaymentsRequest {
            person_key: key.clone(),
            ..Default::default()
        };
        let token = app.token(Role::Town, Some(town));
        let mut client = app.ledger();
        async move { client.person_payments(authed(request, &token)).await }
    };

    let own_town = read("450923106").await;
    let other_town = read("450923100").await.unwrap_err();

    assert!(own_town.is_ok(), "{own_town:?}");
    assert_eq!(other_town.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_village_disclosure_list_is_masked_and_totalled() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "180"),
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-08", "170"),
        ],
    )
    .await
    .unwrap();

    let disclosure = app
        .ledger()
        .village_disclosure(VillageDisclosureRequest {
            village_code: "450923106201".into(),
            program_code: "DIBAO_RURAL".into(),
            period: "2026-07".into(),
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let second = app
        .ledger()
        .village_disclosure(VillageDisclosureRequest {
            village_code: "450923106201".into(),
            program_code: "DIBAO_RURAL".into(),
            period: "2026-07".into(),
            page: Some(PageRequest {
                page_size: 1,
                page_token: disclosure.next_page_token.clone(),
            }),
        })
        .await
        .unwrap()
        .into_inner();

    let first = &disclosure.entries[0];
    assert_eq!(first.name_masked, "庞*英");
    assert_eq!(first.id_number_masked, people[0].id_number.masked());
    assert_eq!(second.entries[0].name_masked, "陈*强");
    assert!(second.next_page_token.is_empty());
    assert_eq!(
        (disclosure.total_persons, disclosure.total_fen),
        (2, 35_000)
    );
    assert_eq!(disclosure.program_name, "农村最低生活保障金");
}

#[tokio::test]
async fn totals_are_grouped_by_town_and_program() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[2], "DIBAO_RURAL", "2026-07", "300"),
            RollRow::pay(&people[2], "ELDERLY", "2026-07", "50"),
        ],
    )
    .await
    .unwrap();

    let by_town = app
        .ledger()
        .totals(TotalsRequest {
            group_by: GroupBy::Town as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .totals;
    let by_program = app
        .ledger()
        .totals(TotalsRequest {
            group_by: GroupBy::Program as i32,
            year: 2026,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .totals;

    let towns: Vec<(&str, i64)> = by_town
        .iter()
        .map(|t| (t.key.as_str(), t.amount_fen))
        .collect();
    assert_eq!(towns, [("450923100", 35_000), ("450923106", 17_000)]);
    let programs: Vec<(&str, u64, i64)> = by_program
        .iter()
        .map(|t| (t.key.as_str(), t.persons, t.amount_fen))
        .collect();
    assert_eq!(
        programs,
        [("DIBAO_RURAL", 2, 47_000), ("ELDERLY", 1, 5_000)]
    );
}

#[tokio::test]
async fn a_new_roll_invalidates_cached_lookups() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let key = person_key(&app, &people[0]).await;
    let before = payments_as_citizen(&app, "oWx-grandma", &key)
        .await
        .unwrap();
    let mut redis = redis::Client::open(crate::helpers::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cached: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}ledger:person:{key}:*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(cached.len(), 1, "the lookup was cached");

    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-08", "170")],
    )
    .await
    .unwrap();
    let after = payments_as_citizen(&app, "oWx-grandma", &key)
        .await
        .unwrap();

    assert_eq!(before, [17_000]);
    assert_eq!(after, [17_000, 17_000]);
}

#[tokio::test]
async fn lookups_stay_correct_while_redis_is_cut() {
    let app = TestApp::spawn_with(Options {
        proxy_redis: true,
        ..Options::default()
    })
    .await;
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let key = person_key(&app, &people[0]).await;
    payments_as_citizen(&app, "oWx-grandma", &key)
        .await
        .unwrap(); // cached now

    app.redis_proxy.as_ref().unwrap().cut();
    // A roll lands while Redis is away: its invalidation can't reach Redis.
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-08", "170")],
    )
    .await
    .unwrap();
    let started = Instant::now();
    let during = payments_as_citizen(&app, "oWx-grandma", &key)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let disclosure = app
        .ledger()
        .village_disclosure(VillageDisclosureRequest {
            village_code: "450923106201".into(),
            program_code: "DIBAO_RURAL".into(),
            period: "2026-08".into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(during, [17_000, 17_000]);
    assert_eq!(disclosure.entries.len(), 1);
    assert!(
        elapsed < Duration::from_secs(3),
        "degraded lookup took {elapsed:?}"
    );
}

#[tokio::test]
async fn a_roll_imported_while_redis_was_cut_is_seen_once_redis_returns() {
    let app = TestApp::spawn_with(Options {
        proxy_redis: true,
        ..Options::default()
    })
    .await;
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let key = person_key(&app, &people[0]).await;
    payments_as_citizen(&app, "oWx-grandma", &key)
        .await
        .unwrap(); // cached now, in Redis and in this process

    let proxy = app.redis_proxy.as_ref().unwrap();
    proxy.cut();
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-08", "170")],
    )
    .await
    .unwrap();
    proxy.restore();
    // Well within the cached page's lifetime: only the invalidation retried
    // after Redis came back (and the process's distrust meanwhile) keep the
    // old page from being served.
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(
            payments_as_citizen(&app, "oWx-grandma", &key)
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (i, payments) in seen.iter().enumerate() {
        assert_eq!(payments, &[17_000, 17_000], "read {i} after Redis returned");
    }
}

#[tokio::test]
async fn an_export_resumed_after_a_dropped_connection_loses_and_repeats_nothing() {
    let (app, village) = crate::helpers::app_with(villagers(400, "450923101201")).await;
    let mut rows = Vec::new();
    for month in ["2026-05", "2026-06", "2026-07"] {
        for (i, person) in village.iter().enumerate() {
            rows.push(RollRow::pay(
                person,
                "DIBAO_RURAL",
                month,
                &format!("{}.{:02}", 100 + i % 50, i % 100),
            ));
        }
    }
    import_csv(&app, &rows).await.unwrap();
    let provincial = app.token(Role::Provincial, None);
    let request = |after_cursor| ExportPaymentsRequest {
        period_from: "2026-05".into(),
        period_to: "2026-07".into(),
        after_cursor,
        batch_size: 100,
        ..Default::default()
    };

    // Read five batches, then drop the connection.
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut cursor = 0;
    {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client =
            huimin_proto::ledger::v1::ledger_service_client::LedgerServiceClient::new(channel);
        let mut stream = client
            .export_payments(authed(request(0), &provincial))
            .await
            .unwrap()
            .into_inner();
        for _ in 0..5 {
            let batch = stream.message().await.unwrap().unwrap();
            seen.extend(batch.payments.iter().map(|p| (p.id, p.amount_fen)));
            cursor = batch.cursor;
        }
    }
    let mut stream = app
        .ledger()
        .export_payments(authed(request(cursor), &provincial))
        .await
        .unwrap()
        .into_inner();
    while let Some(batch) = stream.message().await.unwrap() {
        seen.extend(batch.payments.iter().map(|p| (p.id, p.amount_fen)));
    }

    let mut db = app.db_schema("ledger").await;
    let (count, sum): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(amount_fen)::bigint FROM payments")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let ids: std::collections::BTreeSet<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(seen.len() as i64, count, "every row once");
    assert_eq!(ids.len(), seen.len(), "no row twice");
    assert_eq!(seen.iter().map(|(_, fen)| fen).sum::<i64>(), sum);
    assert_eq!(count, 1200);
}

#[tokio::test]
async fn a_department_officer_sees_only_their_own_programs_payments() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[0], "FARMLAND", "2026", "500"),
        ],
    )
    .await
    .unwrap();
    let key = person_key(&app, &people[0]).await;
    let read = |department: &'static str| {
        let request = PersonPaymentsRequest {
            person_key: key.clone(),
            ..Default::default()
        };
        let token = app.token(Role::Department, Some(department));
        let mut client = app.ledger();
        async move {
            client
                .person_payments(authed(request, &token))
                .await
                .unwrap()
                .into_inner()
                .payments
                .into_iter()
                .map(|p| p.program_code)
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(read("博白县民政局").await, ["DIBAO_RURAL"]);
    assert_eq!(read("博白县农业农村局").await, ["FARMLAND"]);
}

#[tokio::test]
async fn staff_reads_of_payments_are_recorded_and_citizens_own_reads_are_not() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    bind(&app, "oWx-grandma", &people[0]).await;
    let key = person_key(&app, &people[0]).await;

    payments_as_citizen(&app, "oWx-grandma", &key)
        .await
        .unwrap();
    app.ledger()
        .person_payments(authed(
            PersonPaymentsRequest {
                person_key: key.clone(),
                ..Default::default()
            },
            &app.token(Role::Town, Some("450923106")),
        ))
        .await
        .unwrap();

    let mut db = app.db_schema("ledger").await;
    let reads: Vec<(String, String, String)> =
        sqlx::query_as("SELECT role, subject, method FROM staff_reads")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(
        reads,
        [("town".to_owned(), key, "PersonPayments".to_owned())]
    );
}

#[tokio::test]
async fn a_persons_pages_start_with_the_newest_period_whatever_order_the_rolls_came_in() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    // The first half of the year arrives later, as a back-filled history does.
    let history: Vec<RollRow> = (1..=5)
        .map(|m| RollRow::pay(&people[0], "DIBAO_RURAL", &format!("2026-{m:02}"), "160"))
        .collect();
    import_csv(&app, &history).await.unwrap();
    let key = person_key(&app, &people[0]).await;

    let mut periods = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = PersonPaymentsRequest {
            person_key: key.clone(),
            openid: String::new(),
            page: Some(PageRequest {
                page_size: 2,
                page_token: page_token.clone(),
            }),
        };
        let page = app
            .ledger()
            .person_payments(authed(request, &app.token(Role::Admin, None)))
            .await
            .unwrap()
            .into_inner();
        periods.extend(page.payments.into_iter().map(|p| p.period));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    assert_eq!(
        periods,
        [
            "2026-07", "2026-05", "2026-04", "2026-03", "2026-02", "2026-01"
        ]
    );
}
