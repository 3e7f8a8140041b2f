//! Personal data never appears in clear in logs or outside identity's encrypted column.

use crate::helpers::app_with_residents;
use huimin_kit::auth::Role;
use huimin_proto::identity::v1::{
    BindOpenIdRequest, LookupPersonRequest, lookup_person_request::Subject,
};
use sqlx::Row as _;

use crate::helpers::{TestApp, authed, import_persons, logs, persons_csv, residents};

#[tokio::test]
async fn logs_never_contain_the_id_numbers_used() {
    let app = TestApp::spawn().await;
    let people = residents();
    let gateway = app.token(Role::Gateway, None);
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .unwrap();
    let mut bad_file = persons_csv(&people);
    bad_file.push_str("H-9,王某,450923199001011230,户主,450923100201\n");
    let _ = import_persons(&app, bad_file.as_bytes()).await.unwrap_err();
    for (person, name) in [
        (&people[0], people[0].name.as_str()),
        (&people[1], "错误姓名"),
    ] {
        let request = BindOpenIdRequest {
            openid: "oWx-privacy".into(),
            id_number: person.id_number.expose().into(),
            name: name.into(),
        };
        let _ = app.identity().bind_open_id(authed(request, &gateway)).await;
    }
    let lookup = LookupPersonRequest {
        subject: Some(Subject::IdNumber(people[2].id_number.expose().into())),
        reason: "隐私测试".into(),
    };
    app.identity()
        .lookup_person(authed(lookup, &app.token(Role::Inspector, None)))
        .await
        .unwrap();

    let text = logs().text();

    assert!(text.contains("openid bound"), "logs were captured");
    assert!(text.contains("persons imported"), "logs were captured");
    for person in &people {
        let id = person.id_number.expose();
        assert!(!text.contains(id), "an ID number appears in the logs");
        assert!(
            !text.contains(&id[..17]),
            "an ID number's digits appear in the logs"
        );
    }
    assert!(
        !text.contains("450923199001011230"),
        "a rejected ID number appears in the logs"
    );
}

#[tokio::test]
async fn id_numbers_are_stored_only_encrypted() {
    let (app, people) = app_with_residents().await;

    let mut db = app.db().await;
    let rows = sqlx::query("SELECT row_to_json(p)::text FROM persons p")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let dump: String = rows.iter().map(|r| r.get::<String, _>(0)).collect();

    assert_eq!(rows.len(), 3);
    for person in &people {
        assert!(
            !dump.contains(&person.id_number.expose()[..17]),
            "clear ID number in the persons table"
        );
        assert!(
            dump.contains(&person.id_number.masked()),
            "the masked form is kept for display"
        );
    }
}

#[tokio::test]
async fn incoming_trace_context_is_joined_and_logged() {
    let app = TestApp::spawn().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(huimin_proto::identity::v1::LoginRequest {
        username: "tracer".into(),
        password: "not the password".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );

    let _ = app.identity().login(request).await.unwrap_err();

    let line = logs()
        .text()
        .lines()
        .find(|l| l.contains("login refused"))
        .map(str::to_owned)
        .expect("the refusal is logged");
    assert!(
        line.contains(trace_id),
        "log line carries the caller's trace id: {line}"
    );
}

#[tokio::test]
async fn no_table_of_any_schema_holds_an_id_number_in_clear() {
    let (app, people) = app_with_residents().await;
    crate::rolls::import_csv(
        &app,
        &[crate::rolls::RollRow::pay(
            &people[0],
            "DIBAO_RURAL",
            "2026-07",
            "170",
        )],
    )
    .await
    .unwrap();
    let request = BindOpenIdRequest {
        openid: "oWx-privacy-dump".into(),
        id_number: people[0].id_number.expose().into(),
        name: people[0].name.clone(),
    };
    app.identity()
        .bind_open_id(authed(request, &app.token(Role::Gateway, None)))
        .await
        .unwrap();
    let lookup = LookupPersonRequest {
        subject: Some(Subject::IdNumber(people[1].id_number.expose().into())),
        reason: "隐私测试".into(),
    };
    app.identity()
        .lookup_person(authed(lookup, &app.token(Role::Inspector, None)))
        .await
        .unwrap();

    let mut db = app.db().await;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut dump = String::new();
    for (schema, table) in &tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM \"{schema}\".\"{table}\" t"
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        dump.extend(rows);
    }

    let schemas: std::collections::BTreeSet<&str> =
        tables.iter().map(|(s, _)| s.as_str()).collect();
    for schema in ["identity", "ledger", "registry", "whistle"] {
        assert!(schemas.contains(schema), "{schema} dumped: {schemas:?}");
    }
    assert!(
        dump.contains(&people[0].id_number.masked()),
        "the dump holds the persons"
    );
    for person in &people {
        assert!(
            !dump.contains(&person.id_number.expose()[..17]),
            "an ID number in clear in some table"
        );
    }
}

#[tokio::test]
async fn an_id_number_moved_to_another_persons_row_does_not_open() {
    let (app, people) = app_with_residents().await;
    let mut db = app.db().await;
    // Someone with write access to the database swaps two sealed ID numbers.
    let (first, second) = (people[0].id_number.masked(), people[1].id_number.masked());
    let moved = sqlx::query(
        "UPDATE persons p SET id_number_enc = o.id_number_enc
         FROM persons o
         WHERE p.id_number_masked = $1 AND o.id_number_masked = $2",
    )
    .bind(&first)
    .bind(&second)
    .execute(&mut db)
    .await
    .expect("update");
    assert_eq!(moved.rows_affected(), 1);
    let bound: i64 = sqlx::query_scalar("SELECT count(*) FROM persons WHERE id_seal = 2")
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(bound, people.len() as i64, "new rows are sealed bound");

    let lookup = |n: usize| LookupPersonRequest {
        subject: Some(Subject::IdNumber(people[n].id_number.expose().into())),
        reason: "隐私测试".into(),
    };
    let refused = app
        .identity()
        .lookup_person(authed(lookup(0), &app.token(Role::Inspector, None)))
        .await
        .expect_err("the moved ciphertext does not open in another row");
    assert_eq!(refused.code(), tonic::Code::Internal);
    assert!(!refused.message().contains(people[1].id_number.expose()));
    let untouched = app
        .identity()
        .lookup_person(authed(lookup(1), &app.token(Role::Inspector, None)))
        .await
        .expect("the other row still opens")
        .into_inner();
    assert_eq!(
        untouched.person.expect("a person").id_number,
        people[1].id_number.expose()
    );
}
