//! A roll import whose server process is killed midway leaves nothing
//! behind, and the same file imports cleanly afterwards. Uses the real
//! `huimin` binary (its `serve all`, `staff add` and `import payments`).

use huimin_identity::TokenSigner;
use std::{
    io::Write as _,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use huimin_kit::auth::Role;
use sqlx::{Connection as _, PgConnection, postgres::PgConnectOptions};

use crate::{
    helpers::{authed, drop_database, fresh_database, persons_csv, random_keys, redis_url},
    rolls::{RollRow, roll_csv, villagers},
};

/// The `huimin` binary, built if needed (nextest builds test targets, not
/// other packages' binaries).
pub fn huimin_binary() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "huimin"])
        .current_dir(&workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building huimin failed");
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| workspace.join("target"), PathBuf::from);
    target.join("debug").join("huimin")
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// A server process that is killed and reaped however the test ends, so a
/// failing test leaves no `huimin serve` behind on the machine.
struct Server(Child);

impl Server {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Deployment {
    binary: PathBuf,
    env: Vec<(String, String)>,
    grpc: SocketAddr,
    admin: SocketAddr,
}

impl Deployment {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        command
    }

    /// Starts `huimin serve all` and waits until it is ready; the caller
    /// owns the child and kills and reaps it.
    #[allow(clippy::zombie_processes)]
    async fn start(&self) -> Server {
        let child = self
            .command()
            .args(["serve", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts");
        let started = Instant::now();
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(self.admin).await {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").await;
                let mut response = String::new();
                let _ = s.read_to_string(&mut response).await;
                if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") {
                    return Server(child);
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn import_payments(&self, file: &std::path::Path) -> Child {
        let mut child = self
            .command()
            .args([
                "import",
                "payments",
                &file.to_string_lossy(),
                "--username",
                "roll.clerk",
                "--password-stdin",
            ])
            .arg("--server")
            .arg(format!("http://{}", self.grpc))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("import runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"clerk password\n")
            .expect("password sent");
        child
    }
}

async fn counts(options: &PgConnectOptions) -> (i64, i64, i64) {
    let mut db = PgConnection::connect_with(options).await.expect("db");
    sqlx::query_as(
        // Events as the feed serves them: a roll's payments are one span row.
        "SELECT (SELECT count(*) FROM ledger.rolls), (SELECT count(*) FROM ledger.payments),
                (SELECT COALESCE(sum(COALESCE(span, 1)), 0)::bigint FROM ledger.events)",
    )
    .fetch_one(&mut db)
    .await
    .expect("counts")
}

/// Waits until a ledger backend is inside the import's transaction.
async fn wait_for_import_transaction(options: &PgConnectOptions, database: &str) {
    let mut db = PgConnection::connect_with(options).await.expect("db");
    let started = Instant::now();
    loop {
        let busy: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1
                            AND application_name = 'huimin-ledger' AND xact_start IS NOT NULL
                            AND state = 'active' AND query ILIKE '%COPY payments%')",
        )
        .bind(database)
        .fetch_one(&mut db)
        .await
        .expect("pg_stat_activity");
        if busy {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import never reached its transaction"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_import_killed_midway_leaves_nothing_and_can_be_repeated() {
    let binary = huimin_binary();
    let (base, database) = fresh_database().await;
    let options = base.clone().database(&database);
    let keys = random_keys();
    let signer_seed = keys
        .iter()
        .find(|(k, _)| *k == "HUIMIN_TOKEN_SIGNING_KEY")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut env: Vec<(String, String)> = keys.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let (grpc, admin) = (free_port(), free_port());
    env.extend([
        (
            "DATABASE_URL".to_owned(),
            format!(
                "postgres://{}:postgres@{}:{}/{database}",
                base.get_username(),
                base.get_host(),
                base.get_port()
            ),
        ),
        ("REDIS_URL".to_owned(), redis_url()),
        (
            "HUIMIN_REDIS_PREFIX".to_owned(),
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("HUIMIN_GRPC_ADDR".to_owned(), grpc.to_string()),
        ("HUIMIN_ADMIN_ADDR".to_owned(), admin.to_string()),
        // Far shorter than the import: long-running imports are exempt.
        ("HUIMIN_REQUEST_TIMEOUT_MS".to_owned(), "2000".to_owned()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ]);
    let deployment = Deployment {
        binary,
        env,
        grpc,
        admin,
    };
    let mut staff = deployment
        .command()
        .args([
            "staff",
            "add",
            "--username",
            "roll.clerk",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    staff
        .stdin
        .take()
        .unwrap()
        .write_all(b"clerk password\n")
        .unwrap();
    assert!(staff.wait().unwrap().success());

    let mut server = deployment.start().await;
    let people = villagers(20_000, "450923101201");
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let seed =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signer_seed).unwrap();
    let signer = TokenSigner::from_seed(seed.try_into().unwrap());
    let admin_token = signer
        .issue("test-admin", Role::Admin, None, Duration::from_secs(600))
        .0;
    let csv = persons_csv(&people);
    let chunks: Vec<_> = csv
        .as_bytes()
        .chunks(256 * 1024)
        .map(|data| huimin_proto::identity::v1::ImportPersonsChunk {
            file_name: String::new(),
            data: data.to_vec(),
        })
        .collect();
    huimin_proto::identity::v1::identity_service_client::IdentityServiceClient::new(channel)
        .import_persons(authed(tokio_stream::iter(chunks), &admin_token))
        .await
        .unwrap();
    let mut rows = Vec::new();
    for month in ["2026-03", "2026-04", "2026-05", "2026-06"] {
        rows.extend(
            people
                .iter()
                .map(|p| RollRow::pay(p, "DIBAO_RURAL", month, "170")),
        );
    }
    let file = std::env::temp_dir().join(format!("roll-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, roll_csv(&rows)).unwrap();

    let import = deployment.import_payments(&file);
    wait_for_import_transaction(&options, &database).await;
    server.kill(); // SIGKILL: no shutdown path runs
    let interrupted = import.wait_with_output().unwrap();
    let after_kill = counts(&options).await;

    let mut server = deployment.start().await;
    let retried = deployment
        .import_payments(&file)
        .wait_with_output()
        .unwrap();
    let after_retry = counts(&options).await;
    server.kill();
    let _ = std::fs::remove_file(&file);
    drop_database(&base, &database).await;

    assert!(
        !interrupted.status.success(),
        "the interrupted import reports failure"
    );
    assert_eq!(
        after_kill,
        (0, 0, 0),
        "nothing of the interrupted import is visible"
    );
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert!(String::from_utf8_lossy(&retried.stdout).contains("80000 payments"));
    assert_eq!(after_retry, (1, 80_000, 80_001));
}
