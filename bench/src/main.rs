//! `huimin-bench`: huimin measured against raw baselines on the same machine in one run — a
//! payment-roll import against `psql \copy` into a bare table, cached person lookups against an
//! empty tonic handler, the provincial export against `psql \copy … TO`, and `查询` through the
//! WeChat webhook in safe mode against an empty axum handler. Prints a markdown table for
//! README's Benchmarks section.
//!
//! Everything runs against a fresh database `huimin_bench_<timestamp>` (dropped at the end
//! unless `--keep`) and a real `huimin::App` serving every service in this process.

#![forbid(unsafe_code)]

use std::{process::ExitCode, time::Duration};

/// The allocator the `huimin` binary runs with, so the app measured here is the one deployed
/// (and the empty handler beside it gets the same).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context as _, bail};
use clap::Parser;
use huimin_identity::{Identity, IdentityConfig};
use huimin_kit::{
    auth::Role,
    config::{LogFormat, TelemetryConfig},
};
use huimin_proto::ledger::v1::RollKind;

use huimin_bench::{
    checks, export, import,
    keyspace::Keyspace,
    lookup,
    lookup::{EmptyServer, Shape},
    report::{Machine, Row},
    roll::RollFile,
    scratch::{RunningApp, Scratch},
    webhook,
};
use huimin_bench::{progress, report, roll};

/// Benchmarks huimin against raw PostgreSQL and an empty tonic handler.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Rows in the payment roll (two months of 农村低保 per person).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// The phases to run, comma-separated. Without `import`, a `--reuse`d database keeps
    /// the payments an earlier run imported, and the lookups and export read those.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Phase::Import, Phase::Lookup, Phase::Export, Phase::Webhook])]
    phases: Vec<Phase>,
    /// Lookups in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the lookups share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds of lookups before measuring.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// What the citizens type in the webhook phase (`帮助` measures the webhook without
    /// the services behind it).
    #[arg(long, default_value = "查询")]
    webhook_text: String,
    /// Seconds of lookups measured.
    #[arg(long, default_value_t = 10)]
    measure_secs: u64,
    /// Keep the scratch database (and its keys) for `--reuse` instead of dropping it.
    #[arg(long)]
    keep: bool,
    /// With `checks` on a new database (not `--reuse`): seed a clean county (no planted
    /// irregularities), whose full run must find nothing.
    #[arg(long)]
    clean: bool,
    /// Reuse a database an earlier `--keep` run left, skipping its creation and seeding.
    #[arg(long, value_name = "DATABASE")]
    reuse: Option<String>,
    /// The PostgreSQL server; only its host, port and user are used.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

/// A part of the run, measured against its own baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Import,
    Lookup,
    Export,
    /// `查询` through the WeChat webhook in safe mode, against an empty axum handler.
    Webhook,
    /// The cross-checks: ten years of the county's payments, every rule, then the
    /// incremental run after a 10,000-row record roll. Use a county-scale `--rows`.
    Checks,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = TelemetryConfig {
        log_format: LogFormat::Pretty,
        log_filter: std::env::var("RUST_LOG")
            .unwrap_or_else(|_| "warn,huimin_ledger=info".to_owned()),
        otlp_endpoint: None,
        service_name: "huimin-bench".to_owned(),
    };
    // Logs go to stderr so stdout is the report alone.
    let _telemetry = match huimin_kit::telemetry::init_with_writer(&config, std::io::stderr) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("huimin-bench: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(args).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("huimin-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up, runs the phases and always cleans up; returns the report.
async fn run(args: Args) -> anyhow::Result<String> {
    if args.rows == 0 {
        bail!("--rows must be at least 1");
    }
    if !args.phases.contains(&Phase::Import)
        && !args.phases.contains(&Phase::Checks)
        && args.reuse.is_none()
    {
        bail!("without the import phase, --reuse a database an earlier run imported into");
    }
    let today = chrono::Local::now().date_naive();
    let scratch = match &args.reuse {
        Some(name) => Scratch::reuse(&args.database_url, name).await?,
        None => Scratch::create(&args.database_url, today).await?,
    };
    eprintln!("huimin-bench: database {}", scratch.name);
    let prefix = format!("bench:{}:{}:", scratch.name, std::process::id());
    let mut keyspace = Keyspace::connect(&args.redis_url, &prefix).await?;
    let roll_path = std::env::temp_dir().join(format!("{}-roll.csv", scratch.name));

    let env = scratch.env(&args.redis_url, &prefix);
    let outcome = match RunningApp::start(&env, scratch.keys.signer()).await {
        Ok(app) => {
            let outcome = phases(&args, &scratch, &app, &mut keyspace, &roll_path).await;
            if let Err(error) = app.stop().await {
                eprintln!("huimin-bench: stopping the app: {error:#}");
            }
            outcome
        }
        Err(error) => Err(error),
    };

    let _ = std::fs::remove_file(&roll_path);
    if let Err(error) = keyspace.clear().await {
        eprintln!("huimin-bench: clearing Redis keys {prefix}*: {error:#}");
    }
    if args.keep {
        eprintln!(
            "huimin-bench: kept database {0}; run again with --reuse {0}",
            scratch.name
        );
    } else {
        scratch.drop_database().await?;
    }
    outcome
}

async fn phases(
    args: &Args,
    scratch: &Scratch,
    app: &RunningApp,
    keyspace: &mut Keyspace,
    roll_path: &std::path::Path,
) -> anyhow::Result<String> {
    scratch
        .prepare(args.phases.contains(&Phase::Import))
        .await?;
    let env = scratch.env(&args.redis_url, "unused:");
    let identity = Identity::connect(IdentityConfig::from_env(&env)?)?;
    let today = scratch.keys.today;

    // The county, registered the way `huimin seed` does it.
    let scale = roll::scale_for(args.rows)?;
    let seeded = if scratch.fresh {
        roll::seed(&identity, scale, today).await?
    } else {
        None
    };
    let mut conn = scratch.connect().await?;
    let registered = roll::registered_persons(&mut conn).await?;
    let villages = identity
        .villages()
        .await
        .map_err(|e| anyhow::anyhow!("reading the villages: {e}"))?;
    let admin = app.token(Role::Admin);
    let mut sections: Vec<String> = Vec::new();

    if args.phases.contains(&Phase::Checks) {
        let (ledger, partial) = checks::full(&env, &identity, scale, today, args.clean).await?;
        let path = roll_path.with_extension("record.csv");
        let (v, p) = (villages.clone(), path.clone());
        let record: RollFile = tokio::task::spawn_blocking(move || {
            roll::write_roll(&v, registered, today, 10_000, &p)
        })
        .await
        .context("the roll writer panicked")??;
        let imported = import::import(
            app.channel().await?,
            &admin,
            scratch,
            &record,
            RollKind::Record,
        )
        .await;
        let _ = std::fs::remove_file(&path);
        let imported = imported?;
        let incremental =
            checks::incremental(&ledger, imported.response.roll_id, record.rows).await?;
        sections.push(checks::report(&partial.with(incremental)));
    }

    let spinner = progress::spinner("writing the roll");
    // The checks phase alone needs no big roll of its own.
    let rows = if args.phases == [Phase::Checks] {
        2
    } else {
        args.rows
    };
    let path = roll_path.to_owned();
    let roll: RollFile = tokio::task::spawn_blocking(move || {
        roll::write_roll(&villages, registered, today, rows, &path)
    })
    .await
    .context("the roll writer panicked")??;
    spinner.finish_and_clear();

    let rows_u64 = u64::try_from(roll.rows).context("row count")?;
    let rows_text = report::thousands(roll.rows as f64);
    let mut table: Vec<Row> = Vec::new();

    if args.phases.contains(&Phase::Import) {
        let raw_copy = import::raw_copy(scratch, &roll).await?;
        let imported = import::import(
            app.channel().await?,
            &admin,
            scratch,
            &roll,
            RollKind::PreCheck,
        )
        .await?;
        if imported.response.payments != rows_u64 {
            bail!(
                "ImportRoll posted {} payments of {} rows",
                imported.response.payments,
                roll.rows
            );
        }
        table.push(report::throughput(
            format!("import: `ImportRoll` of a {rows_text}-row CSV roll"),
            rows_u64,
            imported.elapsed,
            raw_copy,
            "`psql \\copy` into an all-text table, no indexes",
        ));
        sections.push(report::breakdown(
            imported.elapsed,
            imported.upload,
            &imported.activity,
        ));
    }

    let mut cached_pages = 0;
    let shape = Shape {
        concurrency: args.concurrency,
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup_secs),
        measure: Duration::from_secs(args.measure_secs),
    };
    let bound = if args.phases.contains(&Phase::Lookup) || args.phases.contains(&Phase::Webhook) {
        lookup::bind_openids(app, &roll.sample).await?
    } else {
        Vec::new()
    };
    if args.phases.contains(&Phase::Lookup) {
        let persons_looked_up = bound.len();
        let huimin_load = lookup::person_payments(app, Role::Gateway, &bound, shape).await?;
        cached_pages = keyspace.keys("ledger:person:*").await?.len();
        let empty = EmptyServer::start().await?;
        let empty_load = empty.load(shape).await;
        empty.stop().await?;
        let empty_load = empty_load?;
        let lookup_path = lookup::path(app, &bound).await?;
        table.push(report::lookup(
            format!(
                "cached `PersonPayments` as gateway ({} in flight, {} HTTP/2 connections, {} persons)",
                shape.concurrency, shape.connections, persons_looked_up
            ),
            &huimin_load,
            &empty_load,
        ));
        sections.push(report::lookup_path(&lookup_path));
    }

    if args.phases.contains(&Phase::Webhook) {
        let gateway = app
            .http_addr
            .context("the app serves no HTTP part (the gateway)")?;
        let openids: Vec<String> = bound.iter().map(|(openid, _)| openid.clone()).collect();
        let text = args.webhook_text.as_str();
        webhook::check_replies(gateway, &openids, text).await?;
        let huimin_load = webhook::load(gateway, &openids, text, shape).await?;
        let empty = webhook::EmptyHandler::start().await?;
        let empty_load = empty.load(&openids, text, shape).await;
        empty.stop().await?;
        table.push(report::webhook(
            format!(
                "webhook `{text}`, safe mode, warm cache ({} in flight, {} bound openids)",
                shape.concurrency,
                openids.len()
            ),
            &huimin_load,
            &empty_load?,
        ));
    }

    if args.phases.contains(&Phase::Export) {
        let (exported, export_time) =
            export::export(app.channel().await?, &admin, rows_u64).await?;
        let raw_export = export::raw_export(scratch).await?;
        table.push(report::throughput(
            format!("export: `ExportPayments` of {rows_text} rows, batches of 5,000"),
            exported,
            export_time,
            raw_export,
            "`psql \\copy (SELECT … ORDER BY id) TO '/dev/null'`",
        ));
    }

    let postgres: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .context("reading the server version")?;
    let machine = Machine {
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: report::memory_gib(),
        postgres: postgres
            .split_whitespace()
            .next()
            .unwrap_or("unknown")
            .to_owned(),
        redis: keyspace.version().await?,
    };
    let command = std::iter::once("scripts/bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = format!(
        "Measured {} on {}; command `{command}`.\n\n",
        chrono::Local::now().format("%Y-%m-%d"),
        machine.describe()
    );
    if !table.is_empty() {
        out.push_str(&report::table(&table));
    }
    for section in &sections {
        out.push('\n');
        out.push_str(section);
    }
    out.push_str(&format!(
        "\nSetup: roll of {} rows ({:.1} MB, {} persons) over a register of {} persons{}; \
         {} cached lookup pages in Redis after the lookup phase.\n",
        rows_text,
        roll.bytes as f64 / 1e6,
        report::thousands(roll.persons as f64),
        report::thousands(registered as f64),
        seeded.map_or_else(String::new, |d| format!(
            " seeded in {:.1} s",
            d.as_secs_f64()
        )),
        cached_pages,
    ));
    Ok(out)
}
