//! The staff login throttle: parallel guesses counted as serial ones, a limit
//! per source, and strangers unable to lock an owner out of their account.

use huimin_identity::login::{MAX_LOGIN_FAILURES, MAX_SOURCE_FAILURES};
use huimin_kit::auth::Role;
use huimin_proto::identity::v1::LoginRequest;
use tonic::Code;

use crate::{
    helpers::TestApp,
    staff::{add_staff, login},
};

const PASSWORD: &str = "correct horse battery";

/// A login as a front end forwards it: with `x-forwarded-for`, and with the
/// front end's token when it has one.
async fn login_via(
    app: &TestApp,
    username: &str,
    password: &str,
    forwarded_for: &str,
    front_token: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(LoginRequest {
        username: username.to_owned(),
        password: password.to_owned(),
    });
    request
        .metadata_mut()
        .insert("x-forwarded-for", forwarded_for.parse().expect("ascii"));
    if let Some(token) = front_token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
    }
    app.identity().login(request).await.map(|_| ())
}

fn codes(results: &[Result<(), tonic::Status>], code: Code) -> usize {
    results
        .iter()
        .filter(|r| r.as_ref().err().map(tonic::Status::code) == Some(code))
        .count()
}

#[tokio::test]
async fn parallel_wrong_logins_are_counted_as_serial_ones() {
    let app = TestApp::spawn().await;
    add_staff(&app, "liu.inspector", Role::Inspector, None, PASSWORD).await;

    let guesses = (0..60).map(|i| {
        let app = &app;
        async move {
            login(app, "liu.inspector", &format!("guess {i}"))
                .await
                .map(|_| ())
        }
    });
    let results = futures::future::join_all(guesses).await;
    let owner = login(&app, "liu.inspector", PASSWORD).await.unwrap_err();

    assert_eq!(
        codes(&results, Code::Unauthenticated),
        MAX_LOGIN_FAILURES as usize,
        "only as many guesses checked as serial attempts would be"
    );
    let others: Vec<&tonic::Status> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| !matches!(s.code(), Code::Unauthenticated | Code::ResourceExhausted))
        .collect();
    assert_eq!(
        codes(&results, Code::ResourceExhausted),
        60 - MAX_LOGIN_FAILURES as usize,
        "the rest are throttled, none fails otherwise: {others:?}"
    );
    assert_eq!(owner.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn one_source_guessing_many_usernames_is_held_back() {
    let app = TestApp::spawn().await;
    add_staff(&app, "chen.auditor", Role::Auditor, None, PASSWORD).await;

    // A forwarded address without a front end's token is ignored: a new one
    // per attempt does not make a new source.
    let mut results = Vec::new();
    for i in 0..MAX_SOURCE_FAILURES {
        results.push(
            login_via(
                &app,
                &format!("user{i}"),
                "guess",
                &format!("10.7.0.{i}"),
                None,
            )
            .await,
        );
    }
    let next = login_via(&app, "fresh.name", "guess", "10.7.1.1", None).await;
    let real_account = login(&app, "chen.auditor", PASSWORD).await;

    assert_eq!(
        codes(&results, Code::Unauthenticated),
        MAX_SOURCE_FAILURES as usize
    );
    assert_eq!(next.unwrap_err().code(), Code::ResourceExhausted);
    assert_eq!(
        real_account.unwrap_err().code(),
        Code::ResourceExhausted,
        "the source is held back whatever the username"
    );
}

#[tokio::test]
async fn strangers_guessing_from_many_sources_do_not_lock_out_the_owner() {
    let app = TestApp::spawn().await;
    add_staff(&app, "liu.inspector", Role::Inspector, None, PASSWORD).await;
    let gateway = app.token(Role::Gateway, None);
    login_via(&app, "liu.inspector", PASSWORD, "10.1.1.1", Some(&gateway))
        .await
        .expect("the owner logs in from their desk");

    let mut results = Vec::new();
    for i in 0..2 * MAX_LOGIN_FAILURES {
        let source = format!("10.9.0.{i}");
        results.push(login_via(&app, "liu.inspector", "guess", &source, Some(&gateway)).await);
    }
    let new_source = login_via(&app, "liu.inspector", PASSWORD, "10.9.9.9", Some(&gateway)).await;
    let owner = login_via(&app, "liu.inspector", PASSWORD, "10.1.1.1", Some(&gateway)).await;

    assert_eq!(
        codes(&results, Code::Unauthenticated),
        MAX_LOGIN_FAILURES as usize,
        "guesses from many sources are counted on the username"
    );
    assert_eq!(
        new_source.unwrap_err().code(),
        Code::ResourceExhausted,
        "an unknown source waits out the username's delay"
    );
    assert!(
        owner.is_ok(),
        "the owner's known source is not held back: {owner:?}"
    );
}
