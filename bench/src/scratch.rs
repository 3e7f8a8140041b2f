//! The scratch database a bench run owns, and the huimin process it runs in-process against it:
//! `CREATE DATABASE huimin_bench_<timestamp>`, fresh keys, `App::build` (which applies every
//! migration), and the drop at the end.
//!
//! The keys and the `today` a database was seeded with are kept in its `bench.run` table, so a
//! database kept with `--keep` can be reused with `--reuse` (its person keys only match under
//! the same HMAC key). They are throwaway keys over synthetic persons, never production ones.

use huimin_identity::TokenSigner;
use std::{net::SocketAddr, str::FromStr as _, time::Duration};

use anyhow::{Context as _, bail};
use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use chrono::NaiveDate;
use huimin::Services;
use huimin_kit::{auth::Role, config::Env};
use rand::RngCore as _;
use sqlx::{Connection as _, Executor as _, PgConnection, postgres::PgConnectOptions};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// How long the bench's own tokens live: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The secrets and the date a scratch database was seeded under.
pub struct RunKeys {
    hmac: [u8; 32],
    encryption: [u8; 32],
    signing: [u8; 32],
    /// The `today` the synthetic county was generated for.
    pub today: NaiveDate,
}

impl RunKeys {
    fn generate(today: NaiveDate) -> Self {
        let key = || {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            bytes
        };
        Self {
            hmac: key(),
            encryption: key(),
            signing: key(),
            today,
        }
    }

    pub fn signer(&self) -> TokenSigner {
        TokenSigner::from_seed(self.signing)
    }
}

/// A database of this run on the server `DATABASE_URL` points at.
pub struct Scratch {
    pub name: String,
    /// Connection string of the scratch database, for the app and for `psql`.
    pub url: String,
    server: PgConnectOptions,
    pub keys: RunKeys,
    /// False when an earlier run's database is reused (and already seeded).
    pub fresh: bool,
}

/// `url` with its database replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let scheme_end = url
        .find("://")
        .map(|i| i + 3)
        .context("DATABASE_URL is not a postgres:// URL")?;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[authority_end..]
        .find('?')
        .map(|i| &rest[authority_end + i..])
        .unwrap_or("");
    Ok(format!(
        "{}{}/{database}{query}",
        &url[..scheme_end],
        &rest[..authority_end]
    ))
}

impl Scratch {
    /// Creates `huimin_bench_<timestamp>` with fresh keys.
    pub async fn create(server_url: &str, today: NaiveDate) -> anyhow::Result<Self> {
        let name = format!(
            "huimin_bench_{}",
            chrono::Utc::now().format("%Y%m%d_%H%M%S")
        );
        let scratch = Self::open(server_url, name, RunKeys::generate(today), true)?;
        let mut admin = scratch.admin().await?;
        admin
            .execute(format!("CREATE DATABASE {}", scratch.name).as_str())
            .await
            .with_context(|| format!("creating database {}", scratch.name))?;
        Ok(scratch)
    }

    /// Reopens a database an earlier run kept, with the keys it recorded.
    pub async fn reuse(server_url: &str, name: &str) -> anyhow::Result<Self> {
        if !name.starts_with("huimin_bench_")
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            bail!("--reuse takes a database name like huimin_bench_20261128_101500");
        }
        let placeholder = RunKeys::generate(chrono::NaiveDate::MIN);
        let mut scratch = Self::open(server_url, name.to_owned(), placeholder, false)?;
        let mut conn = scratch.connect().await?;
        let row: (Vec<u8>, Vec<u8>, Vec<u8>, NaiveDate) =
            sqlx::query_as("SELECT hmac_key, encryption_key, signing_key, today FROM bench.run")
                .fetch_one(&mut conn)
                .await
                .with_context(|| format!("reading bench.run of {name} (was it kept by --keep?)"))?;
        let key = |bytes: Vec<u8>| -> anyhow::Result<[u8; 32]> {
            bytes.try_into().map_err(|_| {
                anyhow::anyhow!("bench.run of {name} holds a key that is not 32 bytes")
            })
        };
        scratch.keys = RunKeys {
            hmac: key(row.0)?,
            encryption: key(row.1)?,
            signing: key(row.2)?,
            today: row.3,
        };
        Ok(scratch)
    }

    fn open(server_url: &str, name: String, keys: RunKeys, fresh: bool) -> anyhow::Result<Self> {
        let server = PgConnectOptions::from_str(server_url)
            .context("DATABASE_URL is not a PostgreSQL connection string")?;
        Ok(Self {
            url: with_database(server_url, &name)?,
            name,
            server,
            keys,
            fresh,
        })
    }

    async fn admin(&self) -> anyhow::Result<PgConnection> {
        PgConnection::connect_with(&self.server.clone().database("postgres"))
            .await
            .context("connecting to the server's postgres database")
    }

    /// A direct connection to the scratch database.
    pub async fn connect(&self) -> anyhow::Result<PgConnection> {
        PgConnection::connect_with(&self.server.clone().database(&self.name))
            .await
            .with_context(|| format!("connecting to {}", self.name))
    }

    /// After migrations: records the run's keys (fresh database) or empties what an earlier
    /// run left in the bindings and, when this run imports, in ledger (reused database), so
    /// every import goes into an empty ledger.
    pub async fn prepare(&self, importing: bool) -> anyhow::Result<()> {
        let mut conn = self.connect().await?;
        conn.execute(
            "CREATE SCHEMA IF NOT EXISTS bench;
             CREATE TABLE IF NOT EXISTS bench.run (
                 hmac_key bytea NOT NULL, encryption_key bytea NOT NULL,
                 signing_key bytea NOT NULL, today date NOT NULL)",
        )
        .await
        .context("creating bench.run")?;
        if self.fresh {
            sqlx::query("INSERT INTO bench.run VALUES ($1, $2, $3, $4)")
                .bind(self.keys.hmac.as_slice())
                .bind(self.keys.encryption.as_slice())
                .bind(self.keys.signing.as_slice())
                .bind(self.keys.today)
                .execute(&mut conn)
                .await
                .context("recording the run's keys")?;
        } else if importing {
            conn.execute(
                "TRUNCATE ledger.payments, ledger.rolls, ledger.events,
                          identity.wechat_bindings, identity.bind_failures RESTART IDENTITY CASCADE",
            )
            .await
            .context("emptying ledger and bindings of the reused database")?;
        } else {
            conn.execute("TRUNCATE identity.wechat_bindings, identity.bind_failures")
                .await
                .context("emptying the bindings of the reused database")?;
        }
        Ok(())
    }

    /// The environment `huimin serve all` would read, pointing at this database.
    pub fn env(&self, redis_url: &str, redis_prefix: &str) -> Env {
        Env::from_pairs(self.env_vars(redis_url, redis_prefix))
    }

    /// [`Scratch::env`] as variables, for a `huimin serve all` started as a process.
    pub fn env_vars(&self, redis_url: &str, redis_prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.url.clone()),
            ("REDIS_URL", redis_url.to_owned()),
            ("HUIMIN_REDIS_PREFIX", redis_prefix.to_owned()),
            ("HUIMIN_GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("HUIMIN_ADMIN_ADDR", "127.0.0.1:0".to_owned()),
            ("HUIMIN_HTTP_ADDR", "127.0.0.1:0".to_owned()),
            // The gateway's Official Account; the lookup bench does not reach WeChat.
            ("HUIMIN_WECHAT_TOKEN", crate::webhook::TOKEN.to_owned()),
            ("HUIMIN_WECHAT_APPID", crate::webhook::APPID.to_owned()),
            ("HUIMIN_WECHAT_APPSECRET", "bench-secret".to_owned()),
            // Safe mode for the webhook phase (crate::webhook seals with the same key).
            ("HUIMIN_WECHAT_AES_KEY", crate::webhook::AES_KEY.to_owned()),
            // Nothing here should reach WeChat's API; a closed local port if it does.
            ("HUIMIN_WECHAT_API_BASE", "http://127.0.0.1:9".to_owned()),
            // Signs the H5 session cookies; the bench opens no page.
            ("HUIMIN_SESSION_KEY", B64.encode([7u8; 32])),
            ("HUIMIN_PII_HMAC_KEY", B64.encode(self.keys.hmac)),
            (
                "HUIMIN_PII_ENCRYPTION_KEY",
                B64.encode(self.keys.encryption),
            ),
            ("HUIMIN_TOKEN_SIGNING_KEY", B64.encode(self.keys.signing)),
            // Throwaway keys: the audit chain shares the HMAC key, so a database
            // kept with --keep still verifies under --reuse.
            ("HUIMIN_AUDIT_HMAC_KEY", B64.encode(self.keys.hmac)),
            ("HUIMIN_BANK_HMAC_KEY", B64.encode(self.keys.hmac)),
            // The checks phase mirrors the facts itself; the app's follower stays out of it.
            ("HUIMIN_FACTS_POLL_SECS", "3600".to_owned()),
            // A million-row roll is one request; the default 5 s would cut it off.
            ("HUIMIN_REQUEST_TIMEOUT_MS", "600000".to_owned()),
            ("HUIMIN_SHUTDOWN_GRACE_SECS", "2".to_owned()),
            ("HUIMIN_LOG_FORMAT", "pretty".to_owned()),
        ]
    }

    /// Drops the database (the app must be stopped first; FORCE ends stragglers).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = self.admin().await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .with_context(|| format!("dropping {}", self.name))?;
        Ok(())
    }
}

/// A running `huimin::App` with every service, and what the bench needs to call it.
pub struct RunningApp {
    pub grpc_addr: SocketAddr,
    /// The gateway's HTTP address (the webhook), when it is served.
    pub http_addr: Option<SocketAddr>,
    pub signer: TokenSigner,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// Builds (migrating the database) and serves `Services::All` on 127.0.0.1 port 0.
    pub async fn start(env: &Env, signer: TokenSigner) -> anyhow::Result<Self> {
        let app = huimin::app(env, Services::All)
            .await
            .context("building the huimin app")?;
        let grpc_addr = app.grpc_addr();
        let http_addr = app.http_addrs().first().copied();
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run(async move {
            let _ = signal.await;
        }));
        Ok(Self {
            grpc_addr,
            http_addr,
            signer,
            shutdown: Some(shutdown),
            server,
        })
    }

    /// A new HTTP/2 connection to the app.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        connect(self.grpc_addr).await
    }

    /// A bearer token for `role`, signed as identity would sign it.
    pub fn token(&self, role: Role) -> String {
        self.signer
            .issue(&format!("bench-{role}"), role, None, TOKEN_TTL)
            .0
    }

    /// Signals shutdown and waits for the drain.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), self.server).await {
            Ok(joined) => joined.context("the app's task panicked")?,
            Err(_) => bail!("the app did not stop within 10 s"),
        }
    }
}

/// Opens one HTTP/2 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://{addr}"))
        .context("building the channel address")?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced_and_query_kept() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/huimin",
                "postgres://postgres@127.0.0.1:5432/b",
            ),
            ("postgres://u:p@h:5432", "postgres://u:p@h:5432/b"),
            (
                "postgres://h/x?sslmode=disable",
                "postgres://h/b?sslmode=disable",
            ),
            (
                "postgres://h?sslmode=disable",
                "postgres://h/b?sslmode=disable",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(
                with_database(url, "b").expect("valid url"),
                expected,
                "{url}"
            );
        }
    }
}
