//! Phase 1, the roll import: `LedgerService/ImportRoll` end to end against `psql \copy` of the
//! same file into a bare all-text table, plus a sampler of `pg_stat_activity` that shows which
//! statement the import was waiting on, moment by moment, so the report can say where the
//! time went without touching the service.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use huimin_proto::ledger::v1::{
    ImportRollChunk, ImportRollResponse, RollKind, ledger_service_client::LedgerServiceClient,
};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::{progress, roll::RollFile, scratch::Scratch};

/// The chunk size a department's client would stream a file in.
const CHUNK: usize = 1 << 20;
/// How often the sampler looks at `pg_stat_activity`.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Runs `psql` with `command` against `url`; returns its wall-clock time.
pub async fn psql(url: &str, command: &str) -> anyhow::Result<Duration> {
    let url = url.to_owned();
    let command = command.to_owned();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let output = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &url,
                "-c",
                &command,
            ])
            .output()
            .context("running psql (is the PostgreSQL client installed?)")?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!(
                "psql failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(elapsed)
    })
    .await
    .context("the psql task panicked")?
}

/// A path as a psql `\copy` literal.
pub fn copy_literal(path: &Path) -> anyhow::Result<String> {
    let text = path.to_str().context("temp path is not UTF-8")?;
    if text.contains('\'') {
        bail!("temp path {text} contains a quote");
    }
    Ok(format!("'{text}'"))
}

/// The baseline: `\copy` of the roll into `bench.raw_roll` (text columns, no indexes).
pub async fn raw_copy(scratch: &Scratch, roll: &RollFile) -> anyhow::Result<Duration> {
    let mut conn = scratch.connect().await?;
    conn.execute(
        "CREATE SCHEMA IF NOT EXISTS bench;
         DROP TABLE IF EXISTS bench.raw_roll;
         CREATE TABLE bench.raw_roll (name text, id_number text, village text, program text,
                                      period text, amount text, bank text, kind text)",
    )
    .await
    .context("creating bench.raw_roll")?;
    let spinner = progress::spinner("baseline: psql \\copy of the roll");
    let elapsed = psql(
        &scratch.url,
        &format!(
            "\\copy bench.raw_roll FROM {} WITH (FORMAT csv, HEADER true)",
            copy_literal(&roll.path)?
        ),
    )
    .await?;
    spinner.finish_and_clear();
    let copied: i64 = sqlx::query_scalar("SELECT count(*) FROM bench.raw_roll")
        .fetch_one(&mut conn)
        .await
        .context("counting bench.raw_roll")?;
    if usize::try_from(copied).ok() != Some(roll.rows) {
        bail!("\\copy loaded {copied} rows of {}", roll.rows);
    }
    conn.execute("DROP TABLE bench.raw_roll")
        .await
        .context("dropping bench.raw_roll")?;
    Ok(elapsed)
}

/// What one import took, and what the database was doing meanwhile.
pub struct ImportRun {
    pub elapsed: Duration,
    /// From the first chunk sent until the client had handed over the last one.
    pub upload: Duration,
    pub response: ImportRollResponse,
    pub activity: Vec<Activity>,
}

/// Time the import spent in one kind of statement (or in none).
#[derive(Debug, Clone)]
pub struct Activity {
    pub what: String,
    pub seconds: f64,
    pub first: Duration,
    pub last: Duration,
}

/// Streams the roll to `ImportRoll` as an admin, in 1 MiB chunks.
pub async fn import(
    channel: Channel,
    token: &str,
    scratch: &Scratch,
    roll: &RollFile,
    kind: RollKind,
) -> anyhow::Result<ImportRun> {
    let bytes = tokio::fs::read(&roll.path)
        .await
        .with_context(|| format!("reading {}", roll.path.display()))?;
    let file_name = roll
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("roll.csv")
        .to_owned();
    let upload_end = Arc::new(OnceLock::new());
    let mut request = tonic::Request::new(chunks(bytes, file_name, kind, Arc::clone(&upload_end)));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("token is not ASCII")?,
    );

    let (stop, stopped) = oneshot::channel();
    let sampler = tokio::spawn(sample(scratch.connect().await?, stopped));
    let spinner = progress::spinner(&format!("huimin: ImportRoll of {} rows", roll.rows));
    let started = Instant::now();
    let result = LedgerServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .import_roll(request)
        .await;
    let elapsed = started.elapsed();
    spinner.finish_and_clear();
    let _ = stop.send(());
    let samples = sampler.await.context("the sampler panicked")??;
    let response = result.context("ImportRoll failed")?.into_inner();
    if !response.created {
        bail!("ImportRoll found the roll imported before; the database is not empty");
    }
    let upload = upload_end
        .get()
        .map_or(elapsed, |end| end.saturating_duration_since(started));
    Ok(ImportRun {
        elapsed,
        upload,
        response,
        activity: activity(&samples, started),
    })
}

/// The roll in chunks; notes the moment the last chunk is taken by the transport.
struct ChunkStream<I> {
    chunks: I,
    done: Arc<OnceLock<Instant>>,
}

impl<I: Iterator<Item = ImportRollChunk> + Unpin> futures::Stream for ChunkStream<I> {
    type Item = ImportRollChunk;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ImportRollChunk>> {
        let next = self.chunks.next();
        if next.is_none() {
            let _ = self.done.set(Instant::now());
        }
        std::task::Poll::Ready(next)
    }
}

fn chunks(
    bytes: Vec<u8>,
    file_name: String,
    kind: RollKind,
    done: Arc<OnceLock<Instant>>,
) -> ChunkStream<impl Iterator<Item = ImportRollChunk> + Unpin> {
    let pieces: Vec<Vec<u8>> = bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let chunks = pieces
        .into_iter()
        .enumerate()
        .map(move |(i, data)| ImportRollChunk {
            file_name: if i == 0 {
                file_name.clone()
            } else {
                String::new()
            },
            data,
            kind: if i == 0 { kind as i32 } else { 0 },
        });
    ChunkStream { chunks, done }
}

/// One look at the database: when, and the statements active in it.
struct Sample {
    at: Instant,
    active: Vec<&'static str>,
}

async fn sample(
    mut conn: PgConnection,
    mut stop: oneshot::Receiver<()>,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let queries: Vec<String> = sqlx::query_scalar(
            "SELECT query FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut conn)
        .await
        .context("sampling pg_stat_activity")?;
        let mut active: Vec<&'static str> = queries.iter().map(|q| statement(q)).collect();
        active.sort_unstable();
        active.dedup();
        samples.push(Sample {
            at: Instant::now(),
            active,
        });
    }
    let _ = conn.close().await;
    Ok(samples)
}

/// Names the import's statements by what they do.
fn statement(query: &str) -> &'static str {
    let q = query.trim();
    // The server's readiness probe, every 500 ms on each pool; not the import's.
    if q == "SELECT 1" {
        return "readiness probe (SELECT 1)";
    }
    let pairs: [(&str, &'static str); 11] = [
        (
            "p.person_key = ANY",
            "identity: CheckPersons lookup (SELECT … = ANY)",
        ),
        ("FROM rolls WHERE file_sha256", "ledger: roll digest lookup"),
        ("FROM programs", "ledger: read programs"),
        ("pg_advisory", "ledger: writers' lock"),
        (
            "p.program_code = $1",
            "ledger: read live payments of the roll's periods",
        ),
        ("INSERT INTO rolls", "ledger: INSERT the roll"),
        ("pg_get_serial_sequence", "ledger: reserve ids and cursors"),
        ("COPY payments", "ledger: COPY rows into payments"),
        ("INSERT INTO events", "ledger: INSERT the roll's events"),
        ("COMMIT", "ledger: COMMIT"),
        ("INSERT INTO payments", "ledger: INSERT into payments"),
    ];
    pairs
        .iter()
        .find(|(needle, _)| q.contains(needle))
        .map_or("other statement", |(_, name)| name)
}

/// Sums the samples into time per statement, in order of first appearance. Time with no
/// statement running is the server working in Rust (or moving bytes); it is named after the
/// statement it followed, which places it in the import's sequence.
fn activity(samples: &[Sample], started: Instant) -> Vec<Activity> {
    let mut by_name: BTreeMap<String, Activity> = BTreeMap::new();
    let mut previous = started;
    let mut last_statement: Option<&'static str> = None;
    for sample in samples {
        let span = sample.at.saturating_duration_since(previous).as_secs_f64();
        previous = sample.at;
        let offset = sample.at.saturating_duration_since(started);
        let names: Vec<String> = if sample.active.is_empty() {
            vec![match last_statement {
                None => "no statement yet: receive, hash, parse and check rows in Rust".to_owned(),
                Some(before) => format!("no statement, after «{before}»"),
            }]
        } else {
            sample.active.iter().map(|s| (*s).to_owned()).collect()
        };
        if let Some(last) = sample.active.last() {
            last_statement = Some(last);
        }
        for what in names {
            let entry = by_name.entry(what.clone()).or_insert(Activity {
                what,
                seconds: 0.0,
                first: offset,
                last: offset,
            });
            entry.seconds += span;
            entry.last = offset;
        }
    }
    let mut all: Vec<Activity> = by_name.into_values().collect();
    all.sort_by_key(|a| a.first);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_named_by_what_they_do() {
        assert_eq!(
            statement("SELECT p.person_key, p.name FROM persons p WHERE p.person_key = ANY($1)"),
            "identity: CheckPersons lookup (SELECT … = ANY)"
        );
        assert_eq!(
            statement("COPY payments (id, roll_id) FROM STDIN (FORMAT csv)"),
            "ledger: COPY rows into payments"
        );
        assert_eq!(statement("SELECT 1"), "readiness probe (SELECT 1)");
        assert_eq!(statement("VACUUM"), "other statement");
    }

    #[test]
    fn idle_samples_are_named_after_the_statement_before() {
        let started = Instant::now();
        let at = |ms| started + Duration::from_millis(ms);
        let samples = [
            Sample {
                at: at(100),
                active: vec![],
            },
            Sample {
                at: at(300),
                active: vec!["ledger: COPY rows into payments"],
            },
            Sample {
                at: at(350),
                active: vec![],
            },
        ];
        let activity = activity(&samples, started);
        let seen: Vec<(&str, f64)> = activity
            .iter()
            .map(|a| (a.what.as_str(), (a.seconds * 1000.0).round()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "no statement yet: receive, hash, parse and check rows in Rust",
                    100.0
                ),
                ("ledger: COPY rows into payments", 200.0),
                (
                    "no statement, after «ledger: COPY rows into payments»",
                    50.0
                ),
            ]
        );
    }
}
