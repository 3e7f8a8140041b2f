//! Payment roll imports: good rolls, every kind of bad row, encodings and
//! formats, idempotency, corrections, and the event feed.

use crate::helpers::app_with_residents;
use huimin_kit::auth::Role;
use huimin_proto::{
    common::v1::WatchEventsRequest,
    ledger::v1::{PaymentKind, PersonPaymentsRequest},
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::authed,
    rolls::{RollRow, count, import_csv, import_roll, roll_csv},
};

#[tokio::test]
async fn a_good_roll_posts_every_payment_and_its_events() {
    let (app, people) = app_with_residents().await;
    let rows = [
        RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170"),
        RollRow::pay(&people[0], "ELDERLY", "2026年7月", "50.00"),
        RollRow::pay(&people[2], "DIBAO_RURAL", "202607", "300.5"),
    ];

    let outcome = import_csv(&app, &rows).await.unwrap();

    assert!(outcome.created);
    assert_eq!(
        (outcome.payments, outcome.reversals, outcome.total_fen),
        (3, 0, 17_000 + 5_000 + 30_050)
    );
    let mut events = app
        .ledger()
        .watch_events(authed(
            WatchEventsRequest::default(),
            &app.token(Role::Provincial, None),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    for _ in 0..4 {
        kinds.push(events.message().await.unwrap().unwrap().kind);
    }
    assert_eq!(
        kinds,
        [
            "payment.posted",
            "payment.posted",
            "payment.posted",
            "roll.imported"
        ]
    );
}

/// Reads `n` events of ledger's feed after `after`.
async fn ledger_events(
    app: &crate::helpers::TestApp,
    after: i64,
    n: usize,
) -> Vec<huimin_proto::common::v1::Event> {
    let mut stream = app
        .ledger()
        .watch_events(authed(
            WatchEventsRequest {
                after_cursor: after,
                kinds: Vec::new(),
            },
            &app.token(Role::Provincial, None),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        events.push(stream.message().await.unwrap().expect("an event"));
    }
    events
}

#[tokio::test]
async fn a_one_row_rolls_event_names_its_payment() {
    let (app, people) = app_with_residents().await;
    let outcome = import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();

    let events = ledger_events(&app, 0, 2).await;

    let posted: serde_json::Value = serde_json::from_str(&events[0].payload_json).unwrap();
    assert_eq!(events[0].kind, "payment.posted");
    assert_eq!(posted["amount_fen"], 17_000);
    assert_eq!(posted["roll_id"], outcome.roll_id);
    assert!(posted["payment_id"].as_i64().is_some(), "{posted}");
    assert_eq!(events[1].kind, "roll.imported");
}

#[tokio::test]
async fn a_big_rolls_payment_events_are_each_served_and_resume_mid_roll() {
    let (app, people) =
        crate::helpers::app_with(crate::rolls::villagers(2_500, "450923101201")).await;
    let rows: Vec<RollRow> = people
        .iter()
        .map(|p| RollRow::pay(p, "DIBAO_RURAL", "2026-07", "170"))
        .collect();
    let outcome = import_csv(&app, &rows).await.unwrap();

    // More events than one page of the feed: the roll's span is served in pages.
    let all = ledger_events(&app, 0, 2_501).await;
    let resumed = ledger_events(&app, all[1_233].cursor, 1_267).await;
    // A follower of roll.imported only, resuming inside the span, skips the rest of it.
    let summaries = app
        .ledger()
        .watch_events(authed(
            WatchEventsRequest {
                after_cursor: all[100].cursor,
                kinds: vec!["roll.imported".into()],
            },
            &app.token(Role::Provincial, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .expect("an event");

    let (posted, rest) = all.split_at(2_500);
    assert!(posted.iter().all(|e| e.kind == "payment.posted"));
    assert_eq!(rest[0].kind, "roll.imported");
    assert!(
        all.windows(2).all(|w| w[1].cursor == w[0].cursor + 1),
        "one cursor per event, none skipped"
    );
    let payload = |e: &huimin_proto::common::v1::Event| -> serde_json::Value {
        serde_json::from_str(&e.payload_json).unwrap()
    };
    let mut payment_ids: Vec<i64> = posted
        .iter()
        .map(|e| payload(e)["payment_id"].as_i64().unwrap())
        .collect();
    let total: i64 = posted
        .iter()
        .map(|e| payload(e)["amount_fen"].as_i64().unwrap())
        .sum();
    payment_ids.sort_unstable();
    payment_ids.dedup();
    let mut event_ids: Vec<&str> = all.iter().map(|e| e.event_id.as_str()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    assert_eq!(payment_ids.len(), 2_500, "every payment once");
    assert_eq!(event_ids.len(), 2_501, "every event its own id");
    assert_eq!(total, outcome.total_fen);
    assert_eq!(
        resumed,
        all[1_234..],
        "a resumed feed gives the same events"
    );
    assert_eq!(summaries, all[2_500]);
}

#[tokio::test]
async fn every_kind_of_bad_row_is_reported_and_nothing_is_imported() {
    let (app, people) = app_with_residents().await;
    let mut bad_digit = RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170");
    bad_digit.id_number.pop();
    bad_digit
        .id_number
        .push(if people[0].id_number.expose().ends_with('0') {
            '1'
        } else {
            '0'
        });
    let unknown = RollRow {
        id_number: huimin_kit::pii::IdNumber::from_parts(
            "450923",
            chrono::NaiveDate::from_ymd_opt(1990, 5, 5).unwrap(),
            7,
        )
        .expose()
        .to_owned(),
        ..RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")
    };
    let wrong_name = RollRow {
        name: "庞秀兰".into(),
        ..RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")
    };
    let wrong_village = RollRow {
        village: "450923100201".into(),
        ..RollRow::pay(&people[0], "ELDERLY", "2026-07", "50")
    };
    let rows = [
        RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "170"), // line 2: fine
        bad_digit,                                                 // 3
        unknown,                                                   // 4
        wrong_name,                                                // 5
        RollRow::pay(&people[1], "NO_SUCH", "2026-07", "170"),     // 6
        RollRow::pay(&people[1], "ELDERLY", "2026-13", "50"),      // 7
        RollRow::pay(&people[1], "TEKUN", "2026-07", "0"),         // 8
        RollRow::pay(&people[1], "DISABILITY_LIVING", "2026-07", "100.01"), // 9: over the 100.00 ceiling
        RollRow::pay(&people[1], "DIBAO_RURAL", "2026-07", "170"),          // 10: same as line 2
        wrong_village,                                                      // 11
        RollRow {
            bank: "12345".into(),
            ..RollRow::pay(&people[2], "ELDERLY", "2026-07", "50")
        }, // 12
        RollRow::pay(&people[2], "YULU", "2026", "12.345"),                 // 13
    ];

    let status = import_csv(&app, &rows).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status.get_details_bad_request().unwrap().field_violations;
    let reported: Vec<(String, String)> = violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    let fields: Vec<&str> = reported.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "第3行/身份证号",
            "第6行/项目代码",
            "第7行/发放期间",
            "第8行/金额",
            "第9行/金额",
            "第12行/银行账号",
            "第13行/金额",
            "第4行/身份证号",
            "第5行/姓名",
            "第11行/村代码",
            "第10行/身份证号",
        ],
        "{reported:#?}"
    );
    assert!(reported[0].1.contains("校验位"));
    assert!(reported[4].1.contains("上限"));
    assert!(reported[10].1.contains("第2行"));
    assert!(
        status.message().contains("11处错误"),
        "{}",
        status.message()
    );
    assert_eq!(count(&app, "payments").await, 0);
    assert_eq!(count(&app, "rolls").await, 0);
    assert_eq!(count(&app, "events").await, 0);
}

#[tokio::test]
async fn a_gbk_roll_imports() {
    let (app, people) = app_with_residents().await;
    let csv = roll_csv(&[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")]);
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&csv);
    assert!(!unmappable);

    let outcome = import_roll(&app, "七月低保.csv", &gbk, Role::Admin, None)
        .await
        .unwrap();

    assert_eq!(outcome.payments, 1);
    let mut db = app.db_schema("ledger").await;
    let name: String = sqlx::query_scalar("SELECT name_masked FROM payments")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(name, "庞*英");
}

#[tokio::test]
async fn an_xlsx_roll_imports() {
    let (app, people) = app_with_residents().await;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, title) in crate::rolls::HEADER.iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(col).unwrap(), *title)
            .unwrap();
    }
    let row = RollRow::pay(&people[2], "DIBAO_RURAL", "2026-07", "0");
    for (col, value) in [
        &row.name,
        &row.id_number,
        &row.village,
        &row.program,
        &row.period,
    ]
    .into_iter()
    .enumerate()
    {
        sheet
            .write_string(1, u16::try_from(col).unwrap(), value.as_str())
            .unwrap();
    }
    sheet.write_number(1, 5, 320.5).unwrap(); // amounts are numbers in Excel
    sheet.write_string(1, 6, "6228 4800 1234 5678").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();

    let outcome = import_roll(&app, "roll.xlsx", &bytes, Role::Admin, None)
        .await
        .unwrap();

    assert_eq!((outcome.payments, outcome.total_fen), (1, 32_050));
    let mut db = app.db_schema("ledger").await;
    let bank: String = sqlx::query_scalar("SELECT bank_masked FROM payments")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(bank, "6228********5678");
}

#[tokio::test]
async fn importing_the_same_roll_again_returns_the_first_batch() {
    let (app, people) = app_with_residents().await;
    let rows = [RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")];
    let first = import_csv(&app, &rows).await.unwrap();

    let again = import_csv(&app, &rows).await.unwrap();

    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.roll_id, first.roll_id);
    assert_eq!(again.total_fen, first.total_fen);
    assert_eq!(count(&app, "payments").await, 1);
    assert_eq!(count(&app, "events").await, 2);
}

#[tokio::test]
async fn a_period_already_paid_is_refused_in_a_later_roll() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();

    let status = import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "180")],
    )
    .await
    .unwrap_err();

    let violation = &status.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "第2行/发放期间");
    assert!(
        violation.description.contains("已发放"),
        "{}",
        violation.description
    );
}

#[tokio::test]
async fn a_big_roll_finds_the_periods_already_paid_too() {
    // Over 10,000 rows an import reads the periods' live payments whole
    // instead of by person: the same refusal must come out of that path.
    let (app, people) =
        crate::helpers::app_with(crate::rolls::villagers(10_001, "450923101201")).await;
    let roll = |month: &str, amount: &str, last: &str| {
        let mut rows: Vec<RollRow> = people[..10_000]
            .iter()
            .map(|p| RollRow::pay(p, "DIBAO_RURAL", month, amount))
            .collect();
        rows.push(RollRow::pay(&people[10_000], "DIBAO_RURAL", last, amount));
        rows
    };
    import_csv(&app, &roll("2026-06", "170", "2026-06"))
        .await
        .unwrap();

    // The same persons and month again, but for the last one a new month:
    // 10,000 refusals (not 10,001), as a report the client can read.
    let status = import_csv(&app, &roll("2026-06", "180", "2026-07"))
        .await
        .unwrap_err();

    let violations = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("{status:?}"))
        .field_violations;
    assert!(
        status.message().contains("10000处错误"),
        "{}",
        status.message()
    );
    assert_eq!(violations[0].field, "第2行/发放期间");
    assert!(violations.iter().all(|v| v.description.contains("已发放")));
}

#[tokio::test]
async fn house_renovation_is_paid_once_per_household() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(
            &people[0],
            "HOUSE_RENOVATION",
            "2024",
            "20000",
        )],
    )
    .await
    .unwrap();

    // Her son is in the same household: a second grant to the household is refused.
    let status = import_csv(
        &app,
        &[RollRow::pay(
            &people[1],
            "HOUSE_RENOVATION",
            "2026",
            "20000",
        )],
    )
    .await
    .unwrap_err();

    let violation = &status.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "第2行/项目代码");
}

#[tokio::test]
async fn a_correction_roll_reverses_the_wrong_entry_and_pays_the_right_one() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();

    let correction = import_csv(
        &app,
        &[
            RollRow::reverse(&people[0], "DIBAO_RURAL", "2026-07", "170"),
            RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "190"),
        ],
    )
    .await
    .unwrap();

    assert_eq!(
        (
            correction.payments,
            correction.reversals,
            correction.total_fen
        ),
        (1, 1, 2_000)
    );
    let payments = app
        .ledger()
        .person_payments(authed(
            PersonPaymentsRequest {
                person_key: person_key(&app, &people[0]).await,
                ..Default::default()
            },
            &app.token(Role::Inspector, None),
        ))
        .await
        .unwrap()
        .into_inner()
        .payments;
    let view: Vec<(i64, i32, bool)> = payments
        .iter()
        .map(|p| (p.amount_fen, p.kind, p.related_payment_id != 0))
        .collect();
    assert_eq!(
        view,
        [
            (19_000, PaymentKind::Payment as i32, false),
            (-17_000, PaymentKind::Reversal as i32, true),
            (17_000, PaymentKind::Payment as i32, true),
        ]
    );
    let net: i64 = payments.iter().map(|p| p.amount_fen).sum();
    assert_eq!(net, 19_000);
}

#[tokio::test]
async fn a_reversal_without_its_original_is_refused() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();

    let status = import_csv(
        &app,
        &[RollRow::reverse(
            &people[0],
            "DIBAO_RURAL",
            "2026-07",
            "175",
        )],
    )
    .await
    .unwrap_err();

    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "第2行/类型"
    );
    assert_eq!(count(&app, "payments").await, 1);
}

#[tokio::test]
async fn a_department_officer_imports_only_their_own_programs() {
    let (app, people) = app_with_residents().await;
    let csv = roll_csv(&[RollRow::pay(
        &people[0],
        "HOUSE_RENOVATION",
        "2026",
        "20000",
    )]);

    let status = import_roll(
        &app,
        "r.csv",
        csv.as_bytes(),
        Role::Department,
        Some("博白县民政局"),
    )
    .await
    .unwrap_err();
    let town = import_roll(&app, "r.csv", csv.as_bytes(), Role::Town, Some("450923100"))
        .await
        .unwrap_err();

    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "第2行/项目代码"
    );
    assert_eq!(town.code(), Code::PermissionDenied);
}

/// The person key identity gives a resident (via a staff lookup).
pub async fn person_key(
    app: &crate::helpers::TestApp,
    person: &crate::helpers::Resident,
) -> String {
    use huimin_proto::identity::v1::{LookupPersonRequest, lookup_person_request::Subject};
    let request = LookupPersonRequest {
        subject: Some(Subject::IdNumber(person.id_number.expose().to_owned())),
        reason: "测试取得人员标识".to_owned(),
    };
    app.identity()
        .lookup_person(authed(request, &app.token(Role::Inspector, None)))
        .await
        .unwrap()
        .into_inner()
        .person
        .unwrap()
        .person_key
}

#[tokio::test]
async fn a_house_renovation_grant_is_corrected_in_one_roll() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(
            &people[0],
            "HOUSE_RENOVATION",
            "2026",
            "20000",
        )],
    )
    .await
    .unwrap();

    let corrected = import_csv(
        &app,
        &[
            RollRow::reverse(&people[0], "HOUSE_RENOVATION", "2026", "20000"),
            RollRow::pay(&people[0], "HOUSE_RENOVATION", "2026", "25000"),
        ],
    )
    .await
    .unwrap();

    assert_eq!(
        (corrected.payments, corrected.reversals, corrected.total_fen),
        (1, 1, 500_000)
    );
}

#[tokio::test]
async fn two_rolls_racing_to_pay_one_period_leave_exactly_one_live_payment() {
    let (app, people) = app_with_residents().await;
    // Several rounds, each a fresh period, so the two imports' checks overlap in some of
    // them however the scheduler runs them; only the writers' lock keeps both out.
    for month in 1..=6 {
        let period = format!("2026-{month:02}");
        let first = [RollRow::pay(&people[0], "DIBAO_RURAL", &period, "170")];
        let second = [RollRow::pay(&people[0], "DIBAO_RURAL", &period, "180")];

        let (a, b) = tokio::join!(import_csv(&app, &first), import_csv(&app, &second));

        let refused: Vec<&tonic::Status> = [&a, &b]
            .into_iter()
            .filter_map(|r| r.as_ref().err())
            .collect();
        assert_eq!(
            refused.len(),
            1,
            "{period}: one import wins, one is refused: {a:?} {b:?}"
        );
        let violation = &refused[0]
            .get_details_bad_request()
            .unwrap()
            .field_violations[0];
        assert!(
            violation.description.contains("已发放"),
            "{}",
            violation.description
        );
        let mut db = app.db_schema("ledger").await;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM payments WHERE program_code = 'DIBAO_RURAL' AND period = $1",
        )
        .bind(&period)
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert_eq!(live, 1, "{period}");
    }
}
