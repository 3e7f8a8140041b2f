//! The test harness: each test gets its own database (cloned from a migrated
//! template), its own Redis key prefix, and the real huimin process code
//! serving on 127.0.0.1 port 0.

use huimin_identity::TokenSigner;
use std::{
    io::Write,
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use huimin::Services;
use huimin_kit::{
    auth::Role,
    config::{Env, LogFormat, TelemetryConfig},
    pii::IdNumber,
};
use huimin_proto::identity::v1::identity_service_client::IdentityServiceClient;
use sqlx::{Connection as _, Executor as _, PgConnection, postgres::PgConnectOptions};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

use crate::proxy::Proxy;

/// The server under test and what a test needs to talk to it.
pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The HTTP parts' addresses, in component order (the gateway first).
    pub http_addrs: Vec<SocketAddr>,
    pub channel: Channel,
    pub signer: TokenSigner,
    pub database: String,
    pub db_options: PgConnectOptions,
    pub redis_prefix: String,
    /// Where whistle keeps this test's photos.
    pub attachments_dir: std::path::PathBuf,
    /// whistle's HUIMIN_AUDIT_HMAC_KEY, for `huimin audit verify` run beside it.
    pub audit_hmac_key: String,
    /// Present when the app reaches PostgreSQL through a proxy the test controls.
    pub db_proxy: Option<Proxy>,
    /// Present when the app reaches Redis through a proxy the test controls.
    pub redis_proxy: Option<Proxy>,
    /// The supervised background tasks the app runs.
    pub tasks: Vec<&'static str>,
    /// Whether the database is this app's to drop ([`Options::database`]).
    owns_database: bool,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Options for [`TestApp::spawn_with`].
#[derive(Default)]
pub struct Options {
    pub proxy_db: bool,
    pub proxy_redis: bool,
    pub shutdown_grace: Option<Duration>,
    /// Variables set on top of the test defaults (a second county, say).
    pub env: Vec<(&'static str, String)>,
    /// Serve another app's database (by name) instead of a fresh one, as a
    /// restarted process would; that app keeps it and drops it.
    pub database: Option<String>,
    /// Another PostgreSQL server than DATABASE_URL's (one the test started,
    /// `servers::Postgres::url`); the fresh database is made there.
    pub database_server: Option<String>,
    /// Another Redis than REDIS_URL's (`servers::Redis::url`).
    pub redis_server: Option<String>,
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/huimin".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn redis_addr() -> String {
    let url = redis_url();
    let rest = url.trim_start_matches("redis://");
    let host = rest.split('/').next().unwrap_or(rest);
    host.rsplit('@').next().unwrap_or(host).to_owned()
}

/// Everything the process under test logs, for privacy assertions.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer lock")).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture, at TRACE for our crates and DEBUG for the
/// rest, so the privacy test sees more than production would log.
pub fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<(CapturedLogs, Option<huimin_kit::telemetry::TelemetryGuard>)> =
        OnceLock::new();
    &LOGS
        .get_or_init(|| {
            let logs = CapturedLogs::default();
            let writer = logs.clone();
            let config = TelemetryConfig {
                log_format: LogFormat::Json,
                log_filter: "debug,huimin=trace,huimin_kit=trace,huimin_identity=trace,h2=info,tower=info,hyper=info"
                    .to_owned(),
                otlp_endpoint: None,
                service_name: "huimin-test".to_owned(),
            };
            let guard = huimin_kit::telemetry::init_with_writer(&config, move || writer.clone()).ok();
            (logs, guard)
        })
        .0
}

pub fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    B64.encode(key)
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let _ = logs();
        let owns_database = options.database.is_none();
        let server_url = options.database_server.unwrap_or_else(database_url);
        let (base, database) = match options.database {
            Some(name) => (
                PgConnectOptions::from_str(&server_url).expect("DATABASE_URL parses"),
                name,
            ),
            None => fresh_database_on(&server_url).await,
        };
        let db_options = base.clone().database(&database);

        let db_proxy = if options.proxy_db {
            let target = format!("{}:{}", base.get_host(), base.get_port());
            Some(Proxy::start(&target).await)
        } else {
            None
        };
        let redis_proxy = if options.proxy_redis {
            Some(Proxy::start(&redis_addr()).await)
        } else {
            None
        };

        let db_host_port = match &db_proxy {
            Some(proxy) => proxy.addr.to_string(),
            None => format!("{}:{}", base.get_host(), base.get_port()),
        };
        let user = base.get_username();
        let database_url = format!("postgres://{user}:postgres@{db_host_port}/{database}");
        let redis_url = match &redis_proxy {
            Some(proxy) => format!("redis://{}", proxy.addr),
            None => options.redis_server.unwrap_or_else(redis_url),
        };
        let redis_prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let signer = TokenSigner::generate();
        let attachments_dir = std::env::temp_dir().join(format!(
            "huimin-attachments-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let audit_hmac_key = random_key();
        let mut env = Env::from_pairs([
            ("DATABASE_URL", database_url),
            ("REDIS_URL", redis_url),
            ("HUIMIN_REDIS_PREFIX", redis_prefix.clone()),
            ("HUIMIN_GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("HUIMIN_ADMIN_ADDR", "127.0.0.1:0".to_owned()),
            ("HUIMIN_PII_HMAC_KEY", random_key()),
            ("HUIMIN_PII_ENCRYPTION_KEY", random_key()),
            ("HUIMIN_TOKEN_SIGNING_KEY", B64.encode(signer.seed())),
            ("HUIMIN_DB_MAX_CONNECTIONS", "5".to_owned()),
            // Seal held anonymous entries of finished days every second.
            ("HUIMIN_AUDIT_SEAL_SECS", "1".to_owned()),
            // Follow identity's facts (and run the cross-checks on them) every second.
            ("HUIMIN_FACTS_POLL_SECS", "1".to_owned()),
            ("HUIMIN_AUDIT_HMAC_KEY", audit_hmac_key.clone()),
            ("HUIMIN_BANK_HMAC_KEY", random_key()),
            // Publish the audit chain's head every second, next to the photos.
            ("HUIMIN_AUDIT_HEAD_SECS", "1".to_owned()),
            (
                "HUIMIN_AUDIT_HEAD_DIR",
                format!("{}-audit-head", attachments_dir.to_string_lossy()),
            ),
            (
                "HUIMIN_ATTACHMENTS_DIR",
                attachments_dir.to_string_lossy().into_owned(),
            ),
        ]);
        for (name, value) in wechat_env() {
            env.set(name, value);
        }
        if let Some(grace) = options.shutdown_grace {
            env.set("HUIMIN_SHUTDOWN_GRACE_SECS", grace.as_secs().to_string());
        }
        for (name, value) in options.env {
            env.set(name, value);
        }
        let app = huimin::app(&env, Services::All).await.expect("app builds");
        let grpc_addr = app.grpc_addr();
        let admin_addr = app.admin_addr();
        let http_addrs = app.http_addrs();
        let tasks = app.task_names();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run(async move {
            let _ = shutdown_rx.await;
        }));
        let tls_ca = env
            .optional_str("HUIMIN_TLS_CA")
            .map(|path| std::fs::read(path).expect("the test's CA is readable"));
        let scheme = if tls_ca.is_some() { "https" } else { "http" };
        let mut endpoint = Channel::from_shared(format!("{scheme}://{grpc_addr}"))
            .expect("valid uri")
            .connect_timeout(Duration::from_secs(5));
        if let Some(ca) = tls_ca {
            endpoint = endpoint
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                )
                .expect("TLS config");
        }
        let channel = endpoint
            .connect()
            .await
            .expect("server accepts connections");
        Self {
            grpc_addr,
            admin_addr,
            http_addrs,
            channel,
            signer,
            database,
            db_options,
            redis_prefix,
            attachments_dir,
            audit_hmac_key,
            db_proxy,
            redis_proxy,
            tasks,
            owns_database,
            shutdown: Some(shutdown_tx),
            server: Some(server),
        }
    }

    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel.clone())
    }

    pub fn whistle(
        &self,
    ) -> huimin_proto::whistle::v1::whistle_service_client::WhistleServiceClient<Channel> {
        huimin_proto::whistle::v1::whistle_service_client::WhistleServiceClient::new(
            self.channel.clone(),
        )
        .max_decoding_message_size(128 * 1024 * 1024)
        .max_encoding_message_size(128 * 1024 * 1024)
    }

    pub fn ledger(
        &self,
    ) -> huimin_proto::ledger::v1::ledger_service_client::LedgerServiceClient<Channel> {
        huimin_proto::ledger::v1::ledger_service_client::LedgerServiceClient::new(
            self.channel.clone(),
        )
        .max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn registry(
        &self,
    ) -> huimin_proto::registry::v1::registry_service_client::RegistryServiceClient<Channel> {
        huimin_proto::registry::v1::registry_service_client::RegistryServiceClient::new(
            self.channel.clone(),
        )
        .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// A token as identity would sign it, for callers that are not staff logins.
    /// Where whistle publishes the audit chain's head (HUIMIN_AUDIT_HEAD_DIR).
    pub fn audit_head_dir(&self) -> std::path::PathBuf {
        let mut dir = self.attachments_dir.clone().into_os_string();
        dir.push("-audit-head");
        dir.into()
    }

    pub fn token(&self, role: Role, scope: Option<&str>) -> String {
        self.signer
            .issue(
                &format!("test-{role}"),
                role,
                scope,
                Duration::from_secs(600),
            )
            .0
    }

    /// A service token as `huimin token issue --sub NAME --role service` makes it.
    pub fn service_token(&self, name: &str) -> String {
        self.signer
            .issue(name, Role::Service, None, Duration::from_secs(600))
            .0
    }

    /// The Prometheus text the admin port serves now.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .expect("the admin port answers")
            .text()
            .await
            .expect("a metrics body")
    }

    /// A direct connection to this test's database, for arranging and checking.
    pub async fn db(&self) -> PgConnection {
        self.db_schema("identity").await
    }

    /// A direct connection seeing one service's schema.
    pub async fn db_schema(&self, schema: &str) -> PgConnection {
        let mut conn = PgConnection::connect_with(&self.db_options)
            .await
            .expect("test database reachable");
        conn.execute(format!("SET search_path = {schema}").as_str())
            .await
            .expect("search_path");
        conn
    }

    /// Sends the shutdown signal and returns the server's result.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take().expect("server still running")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let _ = std::fs::remove_dir_all(&self.attachments_dir);
        let _ = std::fs::remove_dir_all(self.audit_head_dir());
        if !self.owns_database {
            return;
        }
        // Drop the database from a separate thread with its own runtime:
        // Drop can't await, and the test's runtime may be shutting down.
        let base = self.db_options.clone();
        let name = self.database.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(drop_database(&base, &name));
            }
        })
        .join();
    }
}

/// A new, migrated database of its own; returns the server's options and its name.
pub async fn fresh_database() -> (PgConnectOptions, String) {
    fresh_database_on(&database_url()).await
}

/// As [`fresh_database`], on the server `server_url` points at.
pub async fn fresh_database_on(server_url: &str) -> (PgConnectOptions, String) {
    let base = PgConnectOptions::from_str(server_url).expect("a PostgreSQL URL");
    let template = template_database(&base).await;
    let database = format!("huimin_t_{}", uuid::Uuid::new_v4().simple());
    create_from_template(&base, &database, &template).await;
    (base, database)
}

/// Drops a test database, whoever is still connected.
pub async fn drop_database(base: &PgConnectOptions, name: &str) {
    if let Ok(mut conn) = PgConnection::connect_with(&base.clone().database("postgres")).await {
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

/// Fresh random keys for a test deployment, as `huimin keys generate` makes them.
pub fn random_keys() -> Vec<(&'static str, String)> {
    let signer = TokenSigner::generate();
    let mut keys = vec![
        ("HUIMIN_PII_HMAC_KEY", random_key()),
        ("HUIMIN_PII_ENCRYPTION_KEY", random_key()),
        ("HUIMIN_AUDIT_HMAC_KEY", random_key()),
        ("HUIMIN_BANK_HMAC_KEY", random_key()),
        ("HUIMIN_TOKEN_SIGNING_KEY", B64.encode(signer.seed())),
    ];
    keys.extend(wechat_env());
    keys
}

/// The Official Account the gateway under test serves (WeChat itself is
/// not reachable: tests that need its API point the gateway at a local one),
/// and the gateway's HTTP port, which must never be a fixed one.
pub fn wechat_env() -> Vec<(&'static str, String)> {
    vec![
        ("HUIMIN_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("HUIMIN_WECHAT_TOKEN", TEST_WECHAT_TOKEN.to_owned()),
        ("HUIMIN_WECHAT_APPID", TEST_WECHAT_APPID.to_owned()),
        ("HUIMIN_WECHAT_APPSECRET", "test-appsecret".to_owned()),
        ("HUIMIN_WECHAT_AES_KEY", TEST_WECHAT_AES_KEY.to_owned()),
        // Signs the H5 pages' session cookies.
        ("HUIMIN_SESSION_KEY", random_key()),
        // Nothing listens here: a test that reaches WeChat's API sets its own.
        ("HUIMIN_WECHAT_API_BASE", "http://127.0.0.1:9".to_owned()),
    ]
}

pub const TEST_WECHAT_TOKEN: &str = "huimintesttoken";
pub const TEST_WECHAT_APPID: &str = "wx0123456789abcdef";
/// 43 characters of base64 without its padding, as WeChat's settings page gives it.
pub const TEST_WECHAT_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// Every service's schema and migrations, as `huimin migrate` applies them.
fn schemas() -> Vec<(&'static str, &'static sqlx::migrate::Migrator)> {
    huimin::schemas()
        .map(|schema| (schema.name, schema.migrator))
        .collect()
}

/// The template database for the current migrations, created once per
/// migration set and shared by every test process (guarded by an advisory lock).
async fn template_database(base: &PgConnectOptions) -> String {
    let fingerprint = schemas()
        .into_iter()
        .flat_map(|(_, migrator)| migrator.iter())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, m| {
            m.checksum
                .iter()
                .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
        });
    let name = format!("huimin_tpl_{fingerprint:016x}");
    let mut admin = PgConnection::connect_with(&base.clone().database("postgres"))
        .await
        .expect("postgres reachable");
    admin
        .execute("SELECT pg_advisory_lock(4509230001)")
        .await
        .expect("advisory lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("query pg_database");
    if !exists {
        let building = format!("{name}_building");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)").as_str())
            .await
            .expect("drop");
        admin
            .execute(format!("CREATE DATABASE {building}").as_str())
            .await
            .expect("create template");
        for (schema, migrator) in &schemas() {
            let pool = sqlx::PgPool::connect_with(
                base.clone()
                    .database(&building)
                    .options([("search_path", *schema)]),
            )
            .await
            .expect("template reachable");
            huimin_kit::db::migrate(&pool, schema, migrator)
                .await
                .expect("migrations apply");
            pool.close().await;
        }
        admin
            .execute(format!("ALTER DATABASE {building} RENAME TO {name}").as_str())
            .await
            .expect("rename template");
    }
    admin
        .execute("SELECT pg_advisory_unlock(4509230001)")
        .await
        .expect("advisory unlock");
    name
}

async fn create_from_template(base: &PgConnectOptions, database: &str, template: &str) {
    let mut admin = PgConnection::connect_with(&base.clone().database("postgres"))
        .await
        .expect("postgres reachable");
    // Concurrent clones of one template can collide; retry briefly.
    for attempt in 0.. {
        let result = admin
            .execute(format!("CREATE DATABASE {database} TEMPLATE {template}").as_str())
            .await;
        match result {
            Ok(_) => return,
            Err(error) if attempt < 50 => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot clone template: {error}"),
        }
    }
}

/// A person of the synthetic test county.
#[derive(Clone, Debug)]
pub struct Resident {
    pub household: String,
    pub name: String,
    pub id_number: IdNumber,
    pub relation: String,
    pub village: String,
}

/// A few residents with valid ID numbers; `n` makes them distinct per test.
pub fn residents() -> Vec<Resident> {
    let born = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
    let village = "450923106201";
    vec![
        Resident {
            household: "H-0001".to_owned(),
            name: "庞秀英".to_owned(),
            id_number: IdNumber::from_parts("450923", born(1948, 3, 9), 222),
            relation: "户主".to_owned(),
            village: village.to_owned(),
        },
        Resident {
            household: "H-0001".to_owned(),
            name: "陈志强".to_owned(),
            id_number: IdNumber::from_parts("450923", born(1972, 11, 30), 131),
            relation: "子".to_owned(),
            village: village.to_owned(),
        },
        Resident {
            household: "H-0002".to_owned(),
            name: "黄丽".to_owned(),
            id_number: IdNumber::from_parts("450923", born(1985, 6, 1), 42),
            relation: "户主".to_owned(),
            village: "450923100201".to_owned(),
        },
    ]
}

/// A test app with the residents above registered.
pub async fn app_with_residents() -> (TestApp, Vec<Resident>) {
    app_with(residents()).await
}

/// A fresh app whose identity holds `people`.
pub async fn app_with(people: Vec<Resident>) -> (TestApp, Vec<Resident>) {
    let app = TestApp::spawn().await;
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .expect("residents import");
    (app, people)
}

/// A persons CSV as a department would send it.
pub fn persons_csv(residents: &[Resident]) -> String {
    let mut text = "户编号,姓名,身份证号,与户主关系,村代码\n".to_owned();
    for r in residents {
        text.push_str(&format!(
            "{},{},{},{},{}\n",
            r.household,
            r.name,
            r.id_number.expose(),
            r.relation,
            r.village
        ));
    }
    text
}

/// Attaches a bearer token to a request message.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// Imports persons through the gRPC API as an admin.
pub async fn import_persons(
    app: &TestApp,
    csv: &[u8],
) -> Result<huimin_proto::identity::v1::ImportPersonsResponse, tonic::Status> {
    import_persons_named(app, "persons.csv", csv).await
}

/// As [`import_persons`], under a file name of the test's choosing.
pub async fn import_persons_named(
    app: &TestApp,
    file_name: &str,
    bytes: &[u8],
) -> Result<huimin_proto::identity::v1::ImportPersonsResponse, tonic::Status> {
    use huimin_proto::identity::v1::ImportPersonsChunk;
    let chunks: Vec<ImportPersonsChunk> = bytes
        .chunks(1024)
        .enumerate()
        .map(|(i, data)| ImportPersonsChunk {
            file_name: if i == 0 {
                file_name.to_owned()
            } else {
                String::new()
            },
            data: data.to_vec(),
        })
        .collect();
    let request = authed(tokio_stream::iter(chunks), &app.token(Role::Admin, None));
    app.identity()
        .import_persons(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Binds free TCP ports for a proxy.
pub async fn local_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port")
}
