//! PostgreSQL: one pool per service, confined to the service's own schema,
//! with the service's embedded migrations.

use std::{str::FromStr, time::Duration};

use secrecy::ExposeSecret as _;
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::DatabaseConfig;

/// A pool whose connections see only `schema` (via `search_path`).
///
/// Connections are made lazily, so a service starts (and reports
/// NOT_SERVING) while the database is still down; the acquire timeout is short
/// so callers get UNAVAILABLE quickly instead of hanging when it goes away.
pub fn pool(config: &DatabaseConfig, schema: &'static str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(config.url.expose_secret())
        .map_err(|_| anyhow::anyhow!("configuration: DATABASE_URL is malformed"))?
        .options([("search_path", schema)])
        .application_name(&format!("huimin-{schema}"));
    Ok(lazy(config, options))
}

/// The pool for reads that may be a moment stale: the replica at
/// HUIMIN_DATABASE_REPLICA_URL when one is configured, else `primary` itself.
///
/// Its sessions are read-only (`default_transaction_read_only`), so a write sent
/// here by mistake fails the same way on a replica and on the primary instead of
/// working on one and not the other.
pub fn replica_pool(
    config: &DatabaseConfig,
    schema: &'static str,
    primary: &PgPool,
) -> anyhow::Result<PgPool> {
    let Some(url) = &config.replica_url else {
        return Ok(primary.clone());
    };
    let options = PgConnectOptions::from_str(url.expose_secret())
        .map_err(|_| anyhow::anyhow!("configuration: HUIMIN_DATABASE_REPLICA_URL is malformed"))?
        .options([
            ("search_path", schema),
            ("default_transaction_read_only", "on"),
        ])
        .application_name(&format!("huimin-{schema}-reader"));
    Ok(lazy(config, options))
}

fn lazy(config: &DatabaseConfig, options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options)
}

/// Creates the schema if needed and applies the service's migrations.
/// Safe to run from several replicas at once: sqlx serializes migrators with
/// an advisory lock, and schema creation is guarded by one too.
pub async fn migrate(
    pool: &PgPool,
    schema: &'static str,
    migrator: &Migrator,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    // A services' role without DDL rights (the owner migrated, see
    // HUIMIN_MIGRATION_DATABASE_URL) could not even run the IF NOT EXISTS
    // statements below: when everything is applied, touch nothing.
    if all_applied(&mut conn, schema, migrator).await {
        return Ok(());
    }
    // Key derived from the schema name so services migrate in parallel.
    let lock_key = i64::from(crc_of(schema));
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key)
        .execute(&mut *conn)
        .await?;
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&mut *conn)
        .await;
    let migrated = match created {
        Ok(_) => migrator.run(&mut *conn).await.map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock_key)
        .execute(&mut *conn)
        .await?;
    migrated
}

/// Whether every migration of `migrator` is recorded as applied in `schema`,
/// with the checksum it has now; false when that cannot be read.
async fn all_applied(conn: &mut sqlx::PgConnection, schema: &str, migrator: &Migrator) -> bool {
    let applied: Result<Vec<(i64, Vec<u8>)>, _> = sqlx::query_as(&format!(
        "SELECT version, checksum FROM {schema}._sqlx_migrations WHERE success"
    ))
    .fetch_all(&mut *conn)
    .await;
    let Ok(applied) = applied else { return false };
    let applied: std::collections::HashMap<i64, Vec<u8>> = applied.into_iter().collect();
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .all(|m| {
            applied
                .get(&m.version)
                .is_some_and(|c| c[..] == m.checksum[..])
        })
}

/// A small stable hash for advisory lock keys (not security relevant).
fn crc_of(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Draws `count` consecutive values from the sequence behind `table.column`
/// and returns the first. They are consecutive because nothing else draws
/// from that sequence meanwhile: call it under the lock its writers share.
pub async fn reserve_serial(
    conn: &mut sqlx::PgConnection,
    table: &str,
    column: &str,
    count: i64,
) -> Result<i64, sqlx::Error> {
    let last: i64 = sqlx::query_scalar(
        "SELECT setval(pg_get_serial_sequence($1, $2), nextval(pg_get_serial_sequence($1, $2)) + $3 - 1)",
    )
    .bind(table)
    .bind(column)
    .bind(count.max(1))
    .fetch_one(conn)
    .await?;
    Ok(last - count.max(1) + 1)
}

/// Whether the database answers within `timeout`.
pub async fn ping(pool: &PgPool, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool)).await,
        Ok(Ok(_))
    )
}

/// Whether an error means the database could not be reached (as opposed to a
/// query that failed).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}

/// The name of the violated constraint, if the error is a constraint violation.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|e| e.constraint())
}
