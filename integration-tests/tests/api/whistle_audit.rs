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

/// The grants docs/operations.md §8 tells operators to run as the owner.
fn documented_grants(app_role: &str) -> String {
    let docs = include_str!("../../../docs/operations.md");
    let after = docs
        .split_once("<!-- grants:")
        .expect("docs/operations.md marks the grants")
        .1;
    let block = after
        .split_once("```sql")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a sql block follows the marker")
        .0;
    block.replace("huimin_app", app_role)
}

#[tokio::test]
async fn with_an_owner_role_for_migrations_the_services_role_may_only_read_and_append_audit_rows() {
    use sqlx::{Connection as _, postgres::PgConnectOptions};
    use std::str::FromStr as _;

    let base = PgConnectOptions::from_str(&crate::helpers::database_url()).unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("huimin_t_{suffix}");
    let (owner, services) = (
        format!("huimin_t_owner_{suffix}"),
        format!("huimin_t_app_{suffix}"),
    );
    let mut admin = sqlx::PgConnection::connect_with(&base.clone().database("postgres"))
        .await
        .unwrap();
    for statement in [
        format!("CREATE DATABASE {database}"),
        format!("CREATE ROLE {owner} LOGIN PASSWORD 'postgres'"),
        format!("CREATE ROLE {services} LOGIN PASSWORD 'postgres'"),
        format!("GRANT CREATE, CONNECT ON DATABASE {database} TO {owner}"),
        format!("GRANT CONNECT ON DATABASE {database} TO {services}"),
    ] {
        admin.execute(statement.as_str()).await.unwrap();
    }
    let url = |role: &str| {
        format!(
            "postgres://{role}:postgres@{}:{}/{database}",
            base.get_host(),
            base.get_port()
        )
    };
    let components = [huimin_whistle::COMPONENT];

    let env = huimin_kit::config::Env::from_pairs([
        ("DATABASE_URL", url(&services)),
        ("HUIMIN_MIGRATION_DATABASE_URL", url(&owner)),
    ]);
    let migrated = huimin_kit::app::migrate(&env, &components).await;
    let mut as_owner = sqlx::PgConnection::connect(&url(&owner)).await.unwrap();
    let granted = as_owner
        .execute(documented_grants(&services).as_str())
        .await;
    // A later release's migration adds a table: the services' role may use it at once.
    let later = as_owner
        .execute("CREATE TABLE whistle.later_release (id bigserial PRIMARY KEY, note text)")
        .await;
    // A process started with the services' role alone finds nothing to do.
    let only_services = huimin_kit::config::Env::from_pairs([("DATABASE_URL", url(&services))]);
    let restarted = huimin_kit::app::migrate(&only_services, &components).await;
    let mut as_services = sqlx::PgConnection::connect(&url(&services)).await.unwrap();
    let appended = sqlx::query(
        "INSERT INTO whistle.audit_log (seq, at, actor, action, detail, prev_hash, hash, keyed)
         VALUES (1, now(), 'system', 'x', '{}', $1, $1, true)",
    )
    .bind([0u8; 32].as_slice())
    .execute(&mut as_services)
    .await;
    let read = sqlx::query("SELECT seq FROM whistle.audit_log")
        .fetch_all(&mut as_services)
        .await;
    let used_later = sqlx::query("INSERT INTO whistle.later_release (note) VALUES ('x')")
        .execute(&mut as_services)
        .await;
    let mut refused = Vec::new();
    for statement in [
        "UPDATE whistle.audit_log SET actor = 'staff:nobody'",
        "DELETE FROM whistle.audit_log",
        "TRUNCATE whistle.audit_log",
        "ALTER TABLE whistle.audit_log DISABLE TRIGGER audit_log_append_only",
    ] {
        refused.push((
            statement,
            as_services
                .execute(statement)
                .await
                .err()
                .map(|e| e.to_string()),
        ));
    }
    drop((as_owner, as_services));
    for statement in [
        format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {owner}"),
        format!("DROP ROLE IF EXISTS {services}"),
    ] {
        let _ = admin.execute(statement.as_str()).await;
    }

    migrated.expect("migrations run as the owner");
    granted.expect("the documented grants run as the owner");
    later.expect("the owner adds a table");
    used_later.expect("a table added after the grants is granted by default");
    restarted.expect("the services' role starts without migrating");
    appended.expect("the services' role appends");
    assert_eq!(read.expect("the services' role reads").len(), 1);
    for (statement, error) in &refused {
        let error = error
            .as_deref()
            .unwrap_or_else(|| panic!("{statement} was allowed"));
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{statement}: {error}"
        );
    }
}
