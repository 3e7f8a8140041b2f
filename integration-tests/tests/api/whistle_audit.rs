//! The audit trail's table refuses to be rewritten, shortened or emptied,
//! whoever connects (issue 10, point 4).

use huimin_kit::auth::Role;
use huimin_proto::whistle::v1::{ListReportsRequest, Subject, VerifyAuditRequest};
use sqlx::{Executor as _, Row as _};

use crate::{
    helpers::{TestApp, authed, logs},
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

/// Audited staff reads, so the chain has timed entries at once.
async fn list_twice(app: &TestApp) {
    for _ in 0..2 {
        app.whistle()
            .list_reports(authed(
                ListReportsRequest {
                    limit: 10,
                    ..Default::default()
                },
                &app.token(Role::Inspector, None),
            ))
            .await
            .unwrap();
    }
}

async fn verify(app: &TestApp) -> huimin_proto::whistle::v1::VerifyAuditResponse {
    app.whistle()
        .verify_audit(authed(
            VerifyAuditRequest {},
            &app.token(Role::Auditor, None),
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_rewritten_entry_with_every_later_hash_recomputed_does_not_verify() {
    let app = TestApp::spawn().await;
    list_twice(&app).await;
    list_twice(&app).await;
    let mut db = app.db_schema("whistle").await;
    let intact = verify(&app).await;

    // Someone with database rights, but not the key, rewrites who read and
    // recomputes the chain from there with the published hash function.
    db.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, report_id, detail, prev_hash FROM audit_log ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut prev: [u8; 32] = rows[1].get::<Vec<u8>, _>("prev_hash").try_into().unwrap();
    for row in &rows[1..] {
        let seq: i64 = row.get("seq");
        let actor = "staff:nobody";
        let detail: serde_json::Value = row.get("detail");
        let hash = huimin_whistle::chain::entry_hash(
            seq,
            row.get("at"),
            actor,
            row.get("action"),
            row.get("report_id"),
            &detail,
            &prev,
        );
        sqlx::query("UPDATE audit_log SET actor = $2, prev_hash = $3, hash = $4 WHERE seq = $1")
            .bind(seq)
            .bind(actor)
            .bind(prev.as_slice())
            .bind(hash.as_slice())
            .execute(&mut db)
            .await
            .unwrap();
        prev = hash;
    }
    let rehashed = verify(&app).await;
    // Then marks the entries as written before the chain was keyed.
    let unkeyed = sqlx::query("UPDATE audit_log SET keyed = false")
        .execute(&mut db)
        .await
        .is_ok();
    let marked = verify(&app).await;

    assert!(intact.intact, "{intact:?}");
    assert_eq!(intact.entries, 4);
    assert!(!rehashed.intact, "a rehashed chain verified: {rehashed:?}");
    assert_eq!(rehashed.broken_at, 2, "{rehashed:?}");
    assert!(unkeyed, "entries say whether they are keyed");
    assert!(!marked.intact, "an unkeyed chain verified: {marked:?}");
    assert!(marked.reason.contains("not keyed"), "{marked:?}");
}

#[tokio::test]
async fn a_removed_tail_or_an_emptied_table_is_caught_by_the_published_head() {
    let app = TestApp::spawn().await;
    list_twice(&app).await;
    let mut db = app.db_schema("whistle").await;
    let head = app.audit_head_dir().join("audit-head.json");
    let started = std::time::Instant::now();
    let mut published = String::new();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        published = std::fs::read_to_string(&head).unwrap_or_default();
        if published.contains("\"seq\": 2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let intact = verify(&app).await;

    db.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .await
        .unwrap();
    db.execute("DELETE FROM audit_log WHERE seq = 2")
        .await
        .unwrap();
    let shortened = verify(&app).await;
    db.execute("DELETE FROM audit_log").await.unwrap();
    let emptied = verify(&app).await;

    assert!(
        published.contains("\"seq\": 2"),
        "head published: {published:?}"
    );
    assert!(
        logs().text().contains("audit chain head published"),
        "the head is in the log too"
    );
    assert!(intact.intact, "{intact:?}");
    for broken in [&shortened, &emptied] {
        assert!(!broken.intact, "{broken:?}");
        assert_eq!(broken.broken_at, 2, "{broken:?}");
        assert!(broken.reason.contains("published head"), "{broken:?}");
    }
}
