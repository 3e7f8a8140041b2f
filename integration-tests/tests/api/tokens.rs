//! Tokens name their audience and can be revoked: a token is refused by
//! every service it is not meant for, and a revoked one by all of them
//! within the revocation poll interval.

use std::time::Duration;

use base64::Engine as _;
use huimin_identity::{Identity, config::IdentityConfig};
use huimin_kit::{auth::Role, config::Env};
use huimin_proto::{
    identity::v1::ListPersonalDataAccessRequest, registry::v1::CreateProjectRequest,
};

use crate::helpers::{Options, TestApp, authed, random_key};

/// identity's library beside the app under test: same database, Redis
/// prefix and signing key, as `huimin token revoke` runs.
pub fn identity_beside(app: &TestApp) -> Identity {
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
        ("HUIMIN_REDIS_PREFIX", app.redis_prefix.clone()),
        ("HUIMIN_PII_HMAC_KEY", random_key()),
        ("HUIMIN_PII_ENCRYPTION_KEY", random_key()),
        (
            "HUIMIN_TOKEN_SIGNING_KEY",
            base64::engine::general_purpose::STANDARD.encode(app.signer.seed()),
        ),
    ]);
    Identity::connect(IdentityConfig::from_env(&env).expect("config")).expect("identity")
}

#[tokio::test]
async fn a_token_is_refused_by_every_service_outside_its_audience() {
    let app = TestApp::spawn().await;
    let (for_identity, _) = app.signer.issue_for(
        "auditor-1",
        Role::Auditor,
        None,
        &["identity"],
        Duration::from_secs(60),
    );
    let accepted = app
        .identity()
        .list_personal_data_access(authed(
            ListPersonalDataAccessRequest::default(),
            &for_identity,
        ))
        .await;
    if let Err(status) = &accepted {
        assert_ne!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }
    let refused = app
        .registry()
        .create_project(authed(CreateProjectRequest::default(), &for_identity))
        .await
        .expect_err("registry is not in the audience");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.message(), "登录凭证不适用于此服务");
}

#[tokio::test]
async fn a_revoked_token_is_refused_everywhere_within_the_poll_interval() {
    let app = TestApp::spawn_with(Options {
        env: vec![("HUIMIN_REVOCATION_POLL_SECS", "1".to_owned())],
        ..Options::default()
    })
    .await;
    let token = app.token(Role::Auditor, None);
    let other = app.token(Role::Auditor, None);
    let call = |token: String| {
        let mut identity = app.identity();
        async move {
            identity
                .list_personal_data_access(authed(ListPersonalDataAccessRequest::default(), &token))
                .await
        }
    };
    assert!(
        call(token.clone()).await.is_ok(),
        "a fresh token is accepted"
    );

    let revoked = identity_beside(&app)
        .revoke_token(&token, "test", "leaked in a ticket")
        .await
        .expect("revokes");
    assert!(revoked.published, "Redis confirmed the revocation");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match call(token.clone()).await {
            Err(status) if status.code() == tonic::Code::Unauthenticated => break,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("the revoked token was still accepted after 10 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert!(
        call(other).await.is_ok(),
        "only the revoked token is refused"
    );
}

#[tokio::test]
async fn revocations_lost_by_redis_are_published_again_from_the_database() {
    let app = TestApp::spawn().await;
    let identity = identity_beside(&app);
    let token = app.token(Role::Auditor, None);
    let revoked = identity
        .revoke_token(&token, "test", "leaked")
        .await
        .expect("revokes");
    // Redis loses the list (restarted without persistence, say).
    let mut redis = redis::Client::open(crate::helpers::redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = format!("{}{}", app.redis_prefix, huimin_kit::cache::REVOKED_TOKENS);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("del");
    assert_eq!(
        identity.republish_revocations().await.expect("republishes"),
        1
    );
    let listed: Vec<String> = redis::cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .expect("zrange");
    assert_eq!(listed, [revoked.jti]);
}
