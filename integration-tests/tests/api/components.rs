//! The binary's component list: every component starts from it, a component
//! run alone names the peer variable it lacks before touching anything, and
//! its background tasks stop with the process.

use std::time::Duration;

use huimin::Services;
use huimin_kit::{auth::Role, config::Env};

use crate::helpers::{TestApp, random_keys};

/// An environment with everything a component needs but its peers, and a
/// database no one can reach: a configuration error must come before any
/// attempt to connect or migrate.
fn lone_env() -> Env {
    lone_env_signed().0
}

/// [`lone_env`] and the signer whose public key it verifies with.
fn lone_env_signed() -> (Env, huimin_identity::TokenSigner) {
    let mut env = Env::from_pairs(random_keys());
    let signer = huimin_identity::TokenSigner::generate();
    env.set(
        "HUIMIN_TOKEN_PUBLIC_KEY",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            signer.verifier().public_key(),
        ),
    );
    env.set(
        "DATABASE_URL",
        "postgres://postgres:postgres@127.0.0.1:1/none",
    );
    env.set("REDIS_URL", "redis://127.0.0.1:1");
    env.set("HUIMIN_GRPC_ADDR", "127.0.0.1:0");
    env.set("HUIMIN_ADMIN_ADDR", "127.0.0.1:0");
    (env, signer)
}

async fn start_error(env: &Env, name: &str) -> String {
    let services: Services = name.parse().expect("a listed component");
    match huimin::app(env, services).await {
        Ok(_) => panic!("{name} started without its configuration"),
        Err(error) => format!("{error:#}"),
    }
}

#[test]
fn the_binary_serves_every_listed_component_by_name() {
    let names: Vec<&str> = huimin::COMPONENTS.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["identity", "ledger", "registry", "whistle", "gateway"]
    );
    for name in names {
        assert_eq!(name.parse::<Services>(), Ok(Services::One(name)));
    }
    let error = "notify".parse::<Services>().expect_err("not built yet");
    assert!(
        error.contains("identity, ledger, registry, whistle, gateway, all"),
        "{error}"
    );
}

#[tokio::test]
async fn a_component_without_its_peer_url_stops_startup_naming_the_variable() {
    for (component, variable) in [
        ("ledger", "HUIMIN_IDENTITY_URL"),
        ("registry", "HUIMIN_IDENTITY_URL"),
        ("whistle", "HUIMIN_IDENTITY_URL"),
    ] {
        let error = start_error(&lone_env(), component).await;
        assert_eq!(
            error,
            format!("starting {component}: configuration: {variable} is required but not set"),
            "one line naming the variable"
        );
    }
    let (mut env, signer) = lone_env_signed();
    env.set("HUIMIN_IDENTITY_URL", "http://identity:50051");
    let (token, _) = signer.issue("whistle", Role::Service, None, Duration::from_secs(600));
    env.set("HUIMIN_SERVICE_TOKEN", token);
    let error = start_error(&env, "whistle").await;
    assert_eq!(
        error,
        "starting whistle: configuration: HUIMIN_LEDGER_URL is required but not set"
    );
}

#[tokio::test]
async fn a_wrong_service_token_stops_startup_instead_of_failing_calls() {
    let (mut env, signer) = lone_env_signed();
    env.set("HUIMIN_IDENTITY_URL", "http://identity:50051");
    let (ledgers, _) = signer.issue("ledger", Role::Service, None, Duration::from_secs(600));
    let (expired, _) = signer.issue("whistle", Role::Service, None, Duration::ZERO);
    let (ledger_only, _) = signer.issue_for(
        "whistle",
        Role::Service,
        None,
        &["ledger"],
        Duration::from_secs(600),
    );
    let (foreign, _) = huimin_identity::TokenSigner::generate().issue(
        "whistle",
        Role::Service,
        None,
        Duration::from_secs(600),
    );
    for (token, reason) in [
        ("garbage".to_owned(), "token is malformed"),
        (
            ledgers,
            "it is ledger's service token; whistle needs its own (service)",
        ),
        (expired, "token has expired"),
        (
            ledger_only,
            "it is not meant for identity (its audience: ledger); issue it with --aud identity",
        ),
        (foreign, "token signature is invalid"),
    ] {
        env.set("HUIMIN_SERVICE_TOKEN", token);
        assert_eq!(
            start_error(&env, "whistle").await,
            format!("starting whistle: configuration: HUIMIN_SERVICE_TOKEN is malformed: {reason}")
        );
    }
}

#[tokio::test]
async fn the_gateway_alone_names_its_missing_settings_and_peers() {
    let mut env = lone_env();
    env.set("HUIMIN_WECHAT_TOKEN", "");
    assert_eq!(
        start_error(&env, "gateway").await,
        "starting gateway: configuration: HUIMIN_WECHAT_TOKEN is required but not set"
    );
    env.set("HUIMIN_WECHAT_TOKEN", "token");
    assert_eq!(
        start_error(&env, "gateway").await,
        "starting gateway: configuration: HUIMIN_IDENTITY_URL is required but not set"
    );
}

#[tokio::test]
async fn serve_all_runs_the_gateway_on_its_own_http_port() {
    let app = TestApp::spawn().await;
    assert_eq!(app.http_addrs.len(), 1, "{:?}", app.http_addrs);
    let gateway = app.http_addrs[0];
    assert_ne!(gateway, app.grpc_addr);
    assert_ne!(gateway, app.admin_addr);
    tokio::net::TcpStream::connect(gateway)
        .await
        .expect("the gateway accepts connections");
}

#[tokio::test]
async fn a_component_alone_needs_a_service_token_for_peers_that_want_one() {
    // The keys of a process that does not run identity: no signing key,
    // so only a configured token will do.
    let mut env = lone_env();
    env.set("HUIMIN_IDENTITY_URL", "http://identity:50051");
    env.set("HUIMIN_TOKEN_SIGNING_KEY", "");
    let env_without_signer = env;
    let error = start_error(&env_without_signer, "ledger").await;
    assert_eq!(
        error,
        "starting ledger: configuration: HUIMIN_SERVICE_TOKEN is required but not set"
    );
    // registry calls only public RPCs: no token needed, so it gets past its
    // peers and fails only at the unreachable database.
    let error = start_error(&env_without_signer, "registry").await;
    assert!(!error.contains("HUIMIN_SERVICE_TOKEN"), "{error}");
}

#[tokio::test]
async fn background_tasks_run_under_the_app_and_stop_with_it() {
    let mut app = TestApp::spawn().await;
    assert_eq!(
        app.tasks,
        [
            "identity.publish_revocations",
            "identity.usage",
            "ledger.roll_checks",
            "ledger.follow_facts",
            "whistle.seal_days",
            "whistle.publish_audit_head",
            "gateway.flush_usage",
            "auth.revocations"
        ]
    );
    let server = app.begin_shutdown();
    let stopped = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the process stops, tasks included, within the grace period")
        .expect("server task joins");
    stopped.expect("clean shutdown");
}

#[tokio::test]
async fn a_refusal_names_who_may_make_the_call() {
    let app = TestApp::spawn().await;
    let refused = app
        .identity()
        .lookup_person(crate::helpers::authed(
            huimin_proto::identity::v1::LookupPersonRequest::default(),
            &app.token(huimin_kit::auth::Role::Provincial, None),
        ))
        .await
        .expect_err("provincial systems read no personal data");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        "当前角色无权执行此操作（可执行：管理员、纪委监委、乡镇、审计）"
    );
}
