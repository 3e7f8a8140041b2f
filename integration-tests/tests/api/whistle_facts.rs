//! A person named in a report: their payments are read when staff open the report, with
//! the reader's own token and scope, and ledger records the read (issue 10, point 6).

use huimin_kit::auth::Role;
use huimin_proto::{
    ledger::v1::PersonPaymentsRequest,
    whistle::v1::{GetReportRequest, Subject},
};
use tonic::Code;

use crate::{
    helpers::{app_with_residents, authed},
    ledger_import::person_key,
    reports::{report_id, request, submit},
    rolls::{RollRow, import_csv},
};

#[tokio::test]
async fn a_named_persons_payments_are_read_as_the_staff_member_opening_the_report() {
    let (app, people) = app_with_residents().await;
    import_csv(
        &app,
        &[RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170")],
    )
    .await
    .unwrap();
    let key = person_key(&app, &people[0]).await;
    let subject = Subject {
        person_key: key.clone(),
        village_code: people[0].village.clone(),
        ..Subject::default()
    };
    let receipt = submit(&app, request("她家条件很好却领低保", subject, true, ""))
        .await
        .unwrap();
    let id = report_id(&app, &receipt.report_number).await;
    let mut whistle_db = app.db_schema("whistle").await;
    let stored: String = sqlx::query_scalar("SELECT ledger_facts::text FROM reports WHERE id = $1")
        .bind(id)
        .fetch_one(&mut whistle_db)
        .await
        .unwrap();

    let town = app.token(Role::Town, Some("450923106"));
    let opened = app
        .whistle()
        .get_report(authed(GetReportRequest { id }, &town))
        .await
        .unwrap()
        .into_inner();
    let mut ledger_db = app.db_schema("ledger").await;
    let reads: Vec<(String, String, String)> =
        sqlx::query_as("SELECT role, subject, method FROM staff_reads")
            .fetch_all(&mut ledger_db)
            .await
            .unwrap();
    let with_service_token = app
        .ledger()
        .person_payments(authed(
            PersonPaymentsRequest {
                person_key: key.clone(),
                ..Default::default()
            },
            &app.service_token("whistle"),
        ))
        .await;

    assert!(
        !stored.contains("person_payments"),
        "a person's payments are stored with the report: {stored}"
    );
    let facts = opened.triage.unwrap().ledger_facts_json;
    assert!(facts.contains("\"person_payments\""), "{facts}");
    assert!(
        facts.contains("17000"),
        "the reader sees the payment: {facts}"
    );
    assert_eq!(
        reads,
        [("town".to_owned(), key, "PersonPayments".to_owned())],
        "the read is recorded as the town officer's"
    );
    assert_eq!(
        with_service_token.map(|_| ()).unwrap_err().code(),
        Code::PermissionDenied,
        "whistle's own token no longer reads a person's payments"
    );
}
