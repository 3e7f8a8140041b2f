//! PostgreSQL and Redis servers a drill owns: started in a temporary folder on a free port,
//! stopped and started again by the test, removed when dropped. The machine's shared servers
//! are never touched. PostgreSQL refuses to run as root, so as root its commands run as the
//! `postgres` user (`runuser`), which owns the data folder.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Where Debian puts PostgreSQL's server programs; `HUIMIN_PG_BIN` overrides.
fn pg_bin(program: &str) -> PathBuf {
    let dir =
        std::env::var("HUIMIN_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    Path::new(&dir).join(program)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("huimin-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, within: Duration) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < within,
            "nothing listens on {port} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL server of the test's own (`initdb` in a temporary folder).
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    as_postgres: bool,
}

impl Postgres {
    /// Initialises a cluster and starts it. Blocking: call before the runtime is busy, or from
    /// `spawn_blocking`.
    pub fn start() -> Self {
        let dir = temp_dir("pg");
        let as_postgres = running_as_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of {}", dir.display());
        }
        let server = Self {
            port: free_port(),
            dir,
            as_postgres,
        };
        server.run(
            pg_bin("initdb").to_str().expect("a UTF-8 path").to_owned(),
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.pg_ctl_start();
        server
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// Runs `program args` as the user that owns the data folder; panics if it fails.
    fn run(&self, program: String, args: &[&str]) {
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &program]);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.run(pg_bin("pg_ctl").to_string_lossy().into_owned(), &all);
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.pg_ctl(&["-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// The connection string of the server (its `postgres` database).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// A fast shutdown (clients disconnected, in-flight transactions rolled back), then a start
    /// on the same port, as an operator's restart or a failover to the same address does.
    pub fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
        self.pg_ctl_start();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_bin("pg_ctl"));
            c
        } else {
            Command::new(pg_bin("pg_ctl"))
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis of the test's own (`redis-server` without persistence, in a temporary folder).
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: temp_dir("redis"),
            child: None,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (is it on PATH?)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients, as a lost node gives none).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
