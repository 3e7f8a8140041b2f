//! `huimin-soak`: starts `huimin serve all` as its own process over a fresh, empty county,
//! keeps public calls in flight over one HTTP/2 connection for `--minutes`, samples the
//! process's RSS as it goes and ends with a verdict: flat or growing. See `scripts/soak`.

#![forbid(unsafe_code)]

use std::{
    path::PathBuf,
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use huimin_bench::{
    keyspace::Keyspace,
    lookup::{self, Shape},
    progress,
    scratch::{self, Scratch},
    soak::{self, Sample, Verdict},
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Soaks `huimin serve all` under steady public calls and judges its memory.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// How long the calls run.
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Calls in flight at once, all over one HTTP/2 connection.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds between memory samples (default: a tenth of the run, at most 60).
    #[arg(long)]
    sample_secs: Option<u64>,
    /// The `huimin` binary to run (default: the one beside this program).
    #[arg(long)]
    huimin: Option<PathBuf>,
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok((report, passed)) => {
            println!("{report}");
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("huimin-soak: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up, soaks and always cleans up; returns the report and whether memory stayed flat.
async fn run(args: Args) -> anyhow::Result<(String, bool)> {
    if args.minutes.is_nan() || args.minutes <= 0.0 {
        bail!("--minutes must be positive");
    }
    let huimin = match &args.huimin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("locating this program")?
            .with_file_name("huimin"),
    };
    let today = chrono::Local::now().date_naive();
    let scratch = Scratch::create(&args.database_url, today).await?;
    let prefix = format!("soak:{}:{}:", scratch.name, std::process::id());
    let log_path = std::env::temp_dir().join(format!("{}.log", scratch.name));
    eprintln!(
        "huimin-soak: database {}, server log {}",
        scratch.name,
        log_path.display()
    );

    let outcome = async {
        let mut server = Server::start(&huimin, &scratch, &args.redis_url, &prefix, &log_path)?;
        let soaked = soak(&args, &server).await;
        server.stop().await;
        soaked
    }
    .await;

    if let Ok(mut keyspace) = Keyspace::connect(&args.redis_url, &prefix).await {
        let _ = keyspace.clear().await;
    }
    scratch.drop_database().await?;
    if outcome.is_ok() {
        let _ = std::fs::remove_file(&log_path);
    }
    outcome
}

/// `huimin serve all` as a child process on free local ports.
struct Server {
    child: Child,
    pid: u32,
    grpc_addr: std::net::SocketAddr,
    admin_addr: std::net::SocketAddr,
}

impl Server {
    fn start(
        huimin: &std::path::Path,
        scratch: &Scratch,
        redis_url: &str,
        prefix: &str,
        log_path: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let grpc_addr = free_port()?;
        let admin_addr = free_port()?;
        let mut vars = scratch.env_vars(redis_url, prefix);
        for (name, value) in &mut vars {
            match *name {
                "HUIMIN_GRPC_ADDR" => *value = grpc_addr.to_string(),
                "HUIMIN_ADMIN_ADDR" => *value = admin_addr.to_string(),
                "HUIMIN_HTTP_ADDR" => *value = free_port()?.to_string(),
                "HUIMIN_LOG_FORMAT" => *value = "json".to_owned(),
                // The calls are public: no deadline longer than production's default.
                "HUIMIN_REQUEST_TIMEOUT_MS" => *value = "5000".to_owned(),
                _ => {}
            }
        }
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(huimin)
            .args(["serve", "all"])
            .envs(vars)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("sharing the log file")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve all", huimin.display()))?;
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            grpc_addr,
            admin_addr,
        })
    }

    /// SIGTERM, as Kubernetes stops it, then a bounded wait (and SIGKILL past it).
    async fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// An error or a panic mid-soak leaves no server behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port nobody listens on now (bound and released; the server binds it right after).
fn free_port() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("the free port's address")
}

/// Waits for SERVING, runs the calls while sampling RSS, and judges.
async fn soak(args: &Args, server: &Server) -> anyhow::Result<(String, bool)> {
    let channel = wait_until_serving(server).await?;
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let every = Duration::from_secs(
        args.sample_secs
            .unwrap_or_else(|| (duration.as_secs() / 10).clamp(1, 60)),
    );
    // Caches, pools and the allocator's first arenas fill in the first minute (or tenth).
    let warmup = Duration::from_secs(60).min(duration / 10);

    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let call = {
        let calls = Arc::clone(&calls);
        let errors = Arc::clone(&errors);
        move |channel: Channel, _worker: usize| {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            let errors = Arc::clone(&errors);
            async move {
                if let Err(status) = soak::public_call(channel, n).await
                    && errors.fetch_add(1, Ordering::Relaxed) == 0
                {
                    eprintln!("huimin-soak: first failed call: {status}");
                }
                Ok::<(), tonic::Status>(())
            }
        }
    };
    let spinner = progress::spinner("soak");
    let shape = Shape {
        concurrency: args.concurrency,
        connections: 1,
        warmup: Duration::ZERO,
        measure: duration,
    };
    let load = tokio::spawn(lookup::closed_loop_shown(
        "soak",
        vec![channel],
        shape,
        call,
        spinner.clone(),
    ));

    let started = Instant::now();
    let take = || -> anyhow::Result<Sample> {
        Ok(Sample {
            at: started.elapsed(),
            calls: calls.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            rss: soak::rss_bytes(server.pid).context("the server process is gone")?,
        })
    };
    let mut samples = vec![take()?];
    loop {
        tokio::time::sleep(every.min(duration.saturating_sub(started.elapsed()))).await;
        if started.elapsed() >= duration || load.is_finished() {
            break;
        }
        let sample = take()?;
        spinner.println(soak::sample_line(&sample));
        spinner.set_message(format!(
            "soak: RSS {:.1} MB, {} calls, {} errors",
            sample.rss as f64 / 1e6,
            sample.calls,
            sample.errors
        ));
        samples.push(sample);
    }
    load.await
        .context("the load task panicked")?
        .context("the load")?;
    samples.push(take()?);
    spinner.finish_and_clear();
    let verdict = Verdict::judge(&samples, warmup).context("no sample taken")?;
    let passed = verdict.passed();
    let mut report = soak::report(&samples, &verdict, args.concurrency);
    // The first scrape of the run: what the server recorded per call (nested peer calls too).
    if let Ok(metrics) = reqwest::get(format!("http://{}/metrics", server.admin_addr))
        .await
        .and_then(reqwest::Response::error_for_status)
        && let Ok(text) = metrics.text().await
    {
        let recorded = soak::recorded_durations(&text);
        report.push_str(&format!(
            "Server-side calls timed (grpc_server_request_duration_seconds_count): {recorded} \
             ({:.2} per public call).\n",
            recorded as f64 / verdict.last.calls.max(1) as f64
        ));
    }
    Ok((report, passed))
}

/// Connects and waits (migrations run first on a fresh database) until every service is SERVING.
async fn wait_until_serving(server: &Server) -> anyhow::Result<Channel> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(channel) = scratch::connect(server.grpc_addr).await {
            let status = HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(1)) {
                return Ok(channel);
            }
        }
        if Instant::now() > deadline {
            bail!("huimin serve all was not SERVING within 120 s (see its log)");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
