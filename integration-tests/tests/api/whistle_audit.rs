//! The audit trail's table refuses to be rewritten, shortened or emptied,
//! whoever connects (issue 10, point 4).

use huimin_proto::whistle::v1::Subject;

use crate::{
    helpers::TestApp,
    reports::{request, submit},
};

#[tokio::test]
async fn the_audit_table_refuses_update_delete_and_truncate() {
    let app = TestApp::spawn().await;
    // The listing's entry is appended at once (the anonymous submission's waits).
    submit(&app, request("反映问题", Subject::default(), true, ""))
        .await
        .unwrap();
    let mut db = app.db_schema("whistle").await;
    let inspector_read = huimin_proto::whistle::v1::ListReportsRequest {
        limit: 10,
        ..Default::default()
    };
    app.whistle()
        .list_reports(crate::helpers::authed(
            inspector_read,
            &app.token(huimin_kit::auth::Role::Inspector, None),
        ))
        .await
        .unwrap();
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&mut db)
        .await
        .unwrap();

    let mut refused = Vec::new();
    for statement in [
        "UPDATE audit_log SET actor = 'staff:nobody'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut db)
            .await
            .expect_err(statement);
        refused.push(error.to_string());
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&mut db)
        .await
        .unwrap();

    assert!(entries > 0, "the trail has entries to protect");
    for error in &refused {
        assert!(error.contains("append-only"), "{refused:?}");
    }
    assert_eq!(after, entries);
}
