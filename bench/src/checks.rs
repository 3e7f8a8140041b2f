//! The cross-checks at county scale: ten years of the synthetic county's payments (as
//! `huimin seed` loads them), identity's facts mirrored into ledger, every rule over all of
//! it, and then the incremental run a 10,000-row record roll sets off.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use chrono::NaiveDate;
use huimin_demo::seed::{self, Scale};
use huimin_identity::Identity;
use huimin_kit::config::Env;

/// What the checks phase measured.
pub struct ChecksRun {
    /// Everything up to and including the full run.
    pub full_run: ChecksRunPartial,
    /// This process's own peak resident memory, in bytes.
    pub peak_bench: u64,
    pub incremental: Incremental,
}

/// The run a record roll set off.
pub struct Incremental {
    pub rows: usize,
    pub persons: i64,
    pub elapsed: Duration,
    pub found: i64,
}

/// Seeds ten years of payments (clean: none planted) when ledger has none, mirrors the facts and runs every
/// rule once, sampling PostgreSQL's memory meanwhile.
pub async fn full(
    env: &Env,
    identity: &Identity,
    scale: Scale,
    today: NaiveDate,
    clean: bool,
) -> anyhow::Result<(huimin_ledger::Ledger, ChecksRunPartial)> {
    let (_, ledger) = huimin::commands::seed_services(env).await?;
    let persons = u64::try_from(scale.persons()).unwrap_or(u64::MAX);
    let started = Instant::now();
    let seeded = seed::payments(identity, &ledger, scale, persons, today, clean)
        .await
        .context("loading the payment history")?;
    let planted = seeded.as_ref().map(|s| s.planted.clone());
    let seeded = seeded.map(|_| started.elapsed());
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&ledger.pool)
        .await?;

    let sampler = MemorySampler::start();
    let started = Instant::now();
    let checked = seed::checks(identity, &ledger).await?;
    let total = started.elapsed();
    let peak_backend = sampler.stop();
    let mirror = total.saturating_sub(Duration::from_millis(checked.outcome.elapsed_ms));
    let planted = match planted {
        Some(planted) => {
            let mut found = 0;
            for (kind, person_key, _, _) in &planted {
                let hit: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM findings WHERE rule_id = $1
                                    AND ($2 OR person_key = $3))",
                )
                .bind(kind.rule())
                .bind(*kind == huimin_demo::payments::Irregularity::SharedAccount)
                .bind(person_key.as_slice())
                .fetch_one(&ledger.pool)
                .await?;
                found += usize::from(hit);
            }
            Some((found, planted.len()))
        }
        None => None,
    };
    Ok((
        ledger,
        ChecksRunPartial {
            payments,
            seeded,
            facts: checked.facts,
            mirror,
            full: checked.outcome,
            by_rule: checked.by_rule,
            planted,
            peak_backend,
        },
    ))
}

/// [`ChecksRun`] before the incremental run.
pub struct ChecksRunPartial {
    pub payments: i64,
    /// The history load, when this run made it.
    pub seeded: Option<Duration>,
    pub facts: u64,
    pub mirror: Duration,
    pub full: huimin_ledger::checks::RunOutcome,
    pub by_rule: Vec<(String, i64)>,
    /// Planted irregularities found by their rule, of those planted (this run's seed only).
    pub planted: Option<(usize, usize)>,
    /// The most anonymous memory one PostgreSQL process held during the full run, in bytes.
    pub peak_backend: u64,
}

impl ChecksRunPartial {
    pub fn with(self, incremental: Incremental) -> ChecksRun {
        ChecksRun {
            full_run: self,
            peak_bench: own_peak(),
            incremental,
        }
    }
}

/// Waits for the background run of `roll_id` (ledger's roll queue) and reads its time.
pub async fn incremental(
    ledger: &huimin_ledger::Ledger,
    roll_id: i64,
    rows: usize,
) -> anyhow::Result<Incremental> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let run: Option<(f64, i64, i32)> = sqlx::query_as(
            "SELECT extract(epoch FROM finished_at - started_at)::float8, persons, found
             FROM check_runs WHERE roll_id = $1 AND finished_at IS NOT NULL
             ORDER BY id DESC LIMIT 1",
        )
        .bind(roll_id)
        .fetch_optional(&ledger.pool)
        .await?;
        if let Some((seconds, persons, found)) = run {
            return Ok(Incremental {
                rows,
                persons,
                elapsed: Duration::from_secs_f64(seconds),
                found: i64::from(found),
            });
        }
        if Instant::now() > deadline {
            bail!("roll {roll_id}'s cross-check did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Samples, every 100 ms, the anonymous memory (RssAnon) of every `postgres` process and
/// keeps the largest: the run's hash tables and sorts live there, not in shared buffers.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl MemorySampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(largest_postgres_anon(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { stop, peak, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

fn largest_postgres_anon() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            if comm.trim() != "postgres" {
                return None;
            }
            status_kib(&dir.join("status"), "RssAnon:")
        })
        .max()
        .unwrap_or(0)
        * 1024
}

fn own_peak() -> u64 {
    status_kib(Path::new("/proc/self/status"), "VmHWM:").unwrap_or(0) * 1024
}

fn status_kib(path: &Path, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The phase's section of the report (markdown).
pub fn report(run: &ChecksRun) -> String {
    let full = &run.full_run;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut out = String::from("Cross-checks (every enabled rule, set-based SQL in ledger):\n\n");
    out.push_str(&format!(
        "- county: {} payments{}; {} facts mirrored from identity in {:.1} s\n",
        crate::report::thousands(full.payments as f64),
        full.seeded
            .map(|d| format!(" (history loaded in {:.0} s)", d.as_secs_f64()))
            .unwrap_or_default(),
        crate::report::thousands(full.facts as f64),
        full.mirror.as_secs_f64(),
    ));
    out.push_str(&format!(
        "- **full run: {:.1} s** ({} findings); peak anonymous memory of one PostgreSQL process {:.0} MiB, of the bench process {:.0} MiB\n",
        full.full.elapsed_ms as f64 / 1000.0,
        full.full.found,
        mib(full.peak_backend),
        mib(run.peak_bench),
    ));
    if let Some((found, planted)) = full.planted {
        out.push_str(&format!(
            "- planted irregularities found by their rule: {found} of {planted}\n"
        ));
    }
    out.push_str(&format!(
        "- **incremental run after a {}-row record roll: {:.2} s** ({} persons in reach, {} new findings)\n",
        crate::report::thousands(run.incremental.rows as f64),
        run.incremental.elapsed.as_secs_f64(),
        run.incremental.persons,
        run.incremental.found,
    ));
    out.push_str("- open findings by rule:");
    for (rule, count) in &full.by_rule {
        out.push_str(&format!(" {rule} {count};"));
    }
    out.push('\n');
    out
}
