//! Staff login, token checks per RPC, scope, and the record of personal-data reads.

use crate::helpers::app_with_residents;
use huimin_identity::TokenSigner;
use huimin_identity::{Identity, IdentityConfig, staff::NewStaff};
use huimin_kit::{auth::Role, config::Env};
use huimin_proto::identity::v1::{
    ImportPersonsChunk, ListPersonalDataAccessRequest, LoginRequest, LookupPersonRequest,
    lookup_person_request::Subject,
};
use tonic::Code;

use crate::helpers::{TestApp, authed};

/// Creates a staff account the way `huimin staff add` does.
pub async fn add_staff(
    app: &TestApp,
    username: &str,
    role: Role,
    scope: Option<&str>,
    password: &str,
) {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let url = format!(
        "postgres://{}:postgres@{}:{}/{}",
        app.db_options.get_username(),
        app.db_options.get_host(),
        app.db_options.get_port(),
        app.database
    );
    let env = Env::from_pairs([
        ("DATABASE_URL", url),
        ("REDIS_URL", crate::helpers::redis_url()),
        ("HUIMIN_PII_HMAC_KEY", key.clone()),
        ("HUIMIN_PII_ENCRYPTION_KEY", key),
        (
            "HUIMIN_TOKEN_SIGNING_KEY",
            base64::engine::general_purpose::STANDARD.encode(TokenSigner::generate().seed()),
        ),
    ]);
    let identity = Identity::connect(IdentityConfig::from_env(&env).unwrap()).unwrap();
    identity
        .add_staff(
            NewStaff {
                username,
                role,
                scope,
                password,
            },
            false,
        )
        .await
        .unwrap();
}

pub async fn login(app: &TestApp, username: &str, password: &str) -> Result<String, tonic::Status> {
    let request = LoginRequest {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    app.identity()
        .login(request)
        .await
        .map(|r| r.into_inner().token)
}

fn lookup(id_number: &str, reason: &str) -> LookupPersonRequest {
    LookupPersonRequest {
        subject: Some(Subject::IdNumber(id_number.to_owned())),
        reason: reason.to_owned(),
    }
}

#[tokio::test]
async fn staff_login_returns_a_token_that_authorizes_lookup() {
    let (app, people) = app_with_residents().await;
    add_staff(
        &app,
        "liu.inspector",
        Role::Inspector,
        None,
        "correct horse battery",
    )
    .await;

    let token = login(&app, "liu.inspector", "correct horse battery")
        .await
        .unwrap();
    let person = app
        .identity()
        .lookup_person(authed(
            lookup(people[0].id_number.expose(), "核查举报线索"),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .person
        .unwrap();

    assert_eq!(person.name, "庞秀英");
    assert_eq!(person.id_number, people[0].id_number.expose());
    assert_eq!(person.town_code, "450923106");
}

#[tokio::test]
async fn wrong_password_is_unauthenticated() {
    let app = TestApp::spawn().await;
    add_staff(
        &app,
        "liu.inspector",
        Role::Inspector,
        None,
        "correct horse battery",
    )
    .await;

    let wrong = login(&app, "liu.inspector", "incorrect horse")
        .await
        .unwrap_err();
    let unknown = login(&app, "nobody", "correct horse battery")
        .await
        .unwrap_err();

    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(
        wrong.message(),
        unknown.message(),
        "no hint which part was wrong"
    );
}

#[tokio::test]
async fn call_without_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let status = app
        .identity()
        .lookup_person(lookup("11010519491231002X", "x"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn token_signed_by_another_key_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let (forged, _) = TokenSigner::generate().issue(
        "mallory",
        Role::Admin,
        None,
        std::time::Duration::from_secs(60),
    );
    let status = app
        .identity()
        .lookup_person(authed(lookup("11010519491231002X", "x"), &forged))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn call_with_the_wrong_role_is_permission_denied() {
    let app = TestApp::spawn().await;

    let gateway_reads_person = app
        .identity()
        .lookup_person(authed(
            lookup("11010519491231002X", "x"),
            &app.token(Role::Gateway, None),
        ))
        .await
        .unwrap_err();
    let chunk = ImportPersonsChunk {
        file_name: "p.csv".to_owned(),
        data: b"x".to_vec(),
    };
    let town_imports = app
        .identity()
        .import_persons(authed(
            tokio_stream::iter([chunk]),
            &app.token(Role::Town, Some("450923100")),
        ))
        .await
        .unwrap_err();

    assert_eq!(gateway_reads_person.code(), Code::PermissionDenied);
    assert_eq!(town_imports.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn town_officer_cannot_read_a_person_of_another_town() {
    let (app, people) = app_with_residents().await;
    let officer = app.token(Role::Town, Some("450923100"));

    let own_town = app
        .identity()
        .lookup_person(authed(
            lookup(people[2].id_number.expose(), "入户核查"),
            &officer,
        ))
        .await;
    let other_town = app
        .identity()
        .lookup_person(authed(
            lookup(people[0].id_number.expose(), "入户核查"),
            &officer,
        ))
        .await
        .unwrap_err();

    assert!(own_town.is_ok(), "{own_town:?}");
    assert_eq!(other_town.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn every_staff_read_of_personal_data_is_recorded() {
    let (app, people) = app_with_residents().await;
    add_staff(
        &app,
        "zhao.auditor",
        Role::Auditor,
        None,
        "auditor password",
    )
    .await;
    let token = login(&app, "zhao.auditor", "auditor password")
        .await
        .unwrap();

    app.identity()
        .lookup_person(authed(
            lookup(people[1].id_number.expose(), "审计抽查2026-11"),
            &token,
        ))
        .await
        .unwrap();
    let missing_reason = app
        .identity()
        .lookup_person(authed(lookup(people[1].id_number.expose(), "  "), &token))
        .await
        .unwrap_err();
    let entries = app
        .identity()
        .list_personal_data_access(authed(
            ListPersonalDataAccessRequest {
                staff_username: "zhao.auditor".to_owned(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;

    assert_eq!(missing_reason.code(), Code::InvalidArgument);
    assert_eq!(
        entries.len(),
        1,
        "only the read that returned data is recorded"
    );
    assert_eq!(entries[0].reason, "审计抽查2026-11");
    assert_eq!(entries[0].method, "LookupPerson");
    assert_eq!(entries[0].person_key.len(), 64);
}

#[tokio::test]
async fn a_service_token_opens_only_the_rpcs_meant_for_that_service() {
    use huimin_proto::identity::v1::{CheckPersonsRequest, PersonClaim};
    let app = TestApp::spawn().await;
    let claim = || CheckPersonsRequest {
        claims: vec![PersonClaim {
            id_number: "11010519491231002X".into(),
            name: "张三".into(),
        }],
    };

    let ledger = app
        .identity()
        .check_persons(authed(claim(), &app.service_token("ledger")))
        .await;
    let whistle = app
        .identity()
        .check_persons(authed(claim(), &app.service_token("whistle")))
        .await
        .unwrap_err();

    assert!(ledger.is_ok(), "{ledger:?}");
    assert_eq!(
        whistle.code(),
        Code::PermissionDenied,
        "whistle has no business checking ID numbers"
    );
}

#[tokio::test]
async fn a_department_officer_cannot_read_a_full_person_record() {
    let (app, people) = app_with_residents().await;

    let status = app
        .identity()
        .lookup_person(authed(
            lookup(people[0].id_number.expose(), "核对"),
            &app.token(Role::Department, Some("博白县民政局")),
        ))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_username() {
    let app = TestApp::spawn().await;
    add_staff(
        &app,
        "liu.inspector",
        Role::Inspector,
        None,
        "correct horse battery",
    )
    .await;
    for _ in 0..huimin_identity::staff::MAX_LOGIN_FAILURES {
        let wrong = login(&app, "liu.inspector", "guess").await.unwrap_err();
        assert_eq!(wrong.code(), Code::Unauthenticated);
    }

    let locked = login(&app, "liu.inspector", "correct horse battery")
        .await
        .unwrap_err();
    let other = login(&app, "nobody.else", "whatever").await.unwrap_err();

    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(
        other.code(),
        Code::Unauthenticated,
        "other usernames are not locked"
    );
}
