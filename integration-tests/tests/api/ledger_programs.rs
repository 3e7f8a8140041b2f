//! ledger's programs as ListPrograms shows them: each with its period kind, read
//! strictly from the database.

use huimin_proto::ledger::v1::{ListProgramsRequest, PeriodKind};
use tonic::Code;

use crate::helpers::TestApp;

#[tokio::test]
async fn programs_are_listed_with_their_period_kinds() {
    let app = TestApp::spawn().await;

    let programs = app
        .ledger()
        .list_programs(ListProgramsRequest {})
        .await
        .unwrap()
        .into_inner()
        .programs;

    let kind = |code: &str| {
        programs
            .iter()
            .find(|p| p.code == code)
            .map(|p| p.period_kind())
            .unwrap()
    };
    assert_eq!(kind("DIBAO_RURAL"), PeriodKind::Monthly);
    assert_eq!(kind("HOUSE_RENOVATION"), PeriodKind::OneOff);
}

#[tokio::test]
async fn a_program_of_an_unknown_period_kind_is_an_error_not_a_one_off() {
    let app = TestApp::spawn().await;
    // As if a migration widened the kinds before the code knew the new one.
    let mut db = app.db_schema("ledger").await;
    sqlx::query("ALTER TABLE programs DROP CONSTRAINT programs_period_kind_check")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE programs SET period_kind = 'half_yearly' WHERE code = 'DIBAO_RURAL'")
        .execute(&mut db)
        .await
        .unwrap();

    let refused = app
        .ledger()
        .list_programs(ListProgramsRequest {})
        .await
        .unwrap_err();

    assert_eq!(refused.code(), Code::Internal);
    assert!(!refused.message().contains("half_yearly"), "{refused:?}");
}
