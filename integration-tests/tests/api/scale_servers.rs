//! Servers a test starts for itself, in a temporary folder on free ports, and stops when
//! it is dropped: a Redis Cluster, a PostgreSQL primary with a streaming replica, an
//! S3-compatible store. Never the machine's shared PostgreSQL or Redis.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A free TCP port on 127.0.0.1 whose cluster-bus twin (port + 10000) is free too.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("an ephemeral port")
            .local_addr()
            .expect("bound")
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A fresh temporary folder, removed by [`Folder`]'s drop.
pub struct Folder(pub PathBuf);

impl Folder {
    pub fn new(what: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("huimin-{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp folder");
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
pub struct Server {
    pub port: u16,
    child: Option<Child>,
}

impl Server {
    pub fn spawn(port: u16, command: &mut Command) -> Self {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
        Self {
            port,
            child: Some(child),
        }
    }

    /// Kills the process at once (SIGKILL), as a crashed node.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Redis Cluster of `masters` masters, each with `replicas` replicas, on 127.0.0.1.
pub struct RedisCluster {
    pub nodes: Vec<Server>,
    replicas: usize,
    _folder: Folder,
}

impl RedisCluster {
    /// Starts the nodes, joins them with `redis-cli --cluster create`, and waits until
    /// every node reports the cluster ok with every replica attached.
    pub async fn start(masters: usize, replicas: usize) -> Self {
        let folder = Folder::new("redis-cluster");
        let nodes: Vec<Server> = (0..masters * (1 + replicas))
            .map(|_| {
                let port = free_port();
                let dir = folder.0.join(port.to_string());
                std::fs::create_dir_all(&dir).expect("node folder");
                Server::spawn(
                    port,
                    Command::new("redis-server")
                        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                        .args(["--cluster-enabled", "yes"])
                        .arg("--cluster-config-file")
                        .arg(dir.join("nodes.conf"))
                        .arg("--dir")
                        .arg(&dir)
                        // A master unreachable for a second is failed over.
                        .args(["--cluster-node-timeout", "1000"])
                        .args(["--save", "", "--appendonly", "no"]),
                )
            })
            .collect();
        for node in &nodes {
            wait_for(Duration::from_secs(10), || {
                redis_cli(node.port, &["ping"]).contains("PONG")
            })
            .await;
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            created.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self {
            nodes,
            replicas,
            _folder: folder,
        };
        cluster.wait_healthy(Duration::from_secs(30)).await;
        cluster
    }

    /// The seed URLs, as HUIMIN_REDIS_CLUSTER_URLS takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Waits until every live node says `cluster_state:ok` and sees every master with
    /// its replicas (until `within`).
    pub async fn wait_healthy(&self, within: Duration) {
        let masters = self.nodes.len() / (1 + self.replicas);
        let ports = self.live_ports();
        wait_for(within, || {
            ports.iter().all(|&port| {
                let nodes = redis_cli(port, &["cluster", "nodes"]);
                let serving = nodes
                    .lines()
                    .filter(|l| l.contains("master") && !l.contains("fail"))
                    .filter(|l| l.split_whitespace().nth(8).is_some())
                    .count();
                redis_cli(port, &["cluster", "info"]).contains("cluster_state:ok")
                    && serving == masters
            })
        })
        .await;
    }

    /// Waits until every live node has marked the node on `port` failed and a replica
    /// serves its slots (until `within`).
    pub async fn wait_failed_over(&self, port: u16, within: Duration) {
        let gone = format!("127.0.0.1:{port}@");
        let ports = self.live_ports();
        wait_for(within, || {
            ports.iter().all(|&p| {
                let nodes = redis_cli(p, &["cluster", "nodes"]);
                let marked = nodes
                    .lines()
                    .any(|l| l.contains(&gone) && l.contains("fail") && !l.contains("fail?"));
                marked && redis_cli(p, &["cluster", "info"]).contains("cluster_state:ok")
            })
        })
        .await;
        self.wait_healthy(within).await;
    }

    /// The port of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let slot: u16 = redis_cli(port, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("a slot number");
        let nodes = redis_cli(port, &["cluster", "nodes"]);
        for line in nodes.lines().filter(|l| l.contains("master")) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| {
                let mut ends = range.split('-').map(|n| n.parse::<u16>().ok());
                match (ends.next().flatten(), ends.next().flatten()) {
                    (Some(a), Some(b)) => (a..=b).contains(&slot),
                    (Some(a), None) => a == slot,
                    _ => false,
                }
            });
            if serves {
                let addr = fields[1].split('@').next().expect("host:port@bus");
                return addr
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("a port");
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Kills the node on `port` (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("one of ours")
            .kill();
    }

    /// Every key under `pattern` on the live masters.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .live_ports()
            .iter()
            .flat_map(|&p| {
                redis_cli(p, &["--raw", "keys", pattern])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Polls `ready` until it holds, or panics after `within`.
pub async fn wait_for(within: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < within, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The `postgres` account's uid and gid: PostgreSQL refuses to run as root.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a postgres account")
    };
    (id("-u"), id("-g"))
}

/// A PostgreSQL program run as the `postgres` account.
fn pg(program: &str) -> Command {
    use std::os::unix::process::CommandExt as _;
    let (uid, gid) = postgres_ids();
    let mut command = Command::new(format!("{PG_BIN}/{program}"));
    command.uid(uid).gid(gid);
    command
}

fn run(command: &mut Command) {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL primary (`wal_level = replica`) and a streaming replica made from it by
/// `pg_basebackup -R`, each on its own port in a temporary folder; trust authentication
/// on 127.0.0.1 only.
pub struct PgPrimaryAndReplica {
    pub primary_port: u16,
    pub replica_port: u16,
    dirs: Vec<PathBuf>,
    _servers: Vec<Server>,
    _folder: Folder,
}

impl PgPrimaryAndReplica {
    pub async fn start() -> Self {
        use std::os::unix::fs::chown;
        let folder = Folder::new("pg-replica");
        let (uid, gid) = postgres_ids();
        chown(&folder.0, Some(uid), Some(gid)).expect("the folder is postgres's");
        let (primary_port, replica_port) = (free_port(), free_port());
        let primary = folder.0.join("primary");
        let replica = folder.0.join("replica");
        run(pg("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .arg("-D")
            .arg(&primary));
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {primary_port}\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nfsync = off\n",
            folder.0.display()
        );
        append(&primary.join("postgresql.conf"), &settings);
        let primary_server = Server::spawn(primary_port, pg("postgres").arg("-D").arg(&primary));
        wait_for(Duration::from_secs(30), || ready(primary_port)).await;
        run(pg("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-R", "-X", "stream", "--no-sync", "-D"])
            .arg(&replica));
        append(
            &replica.join("postgresql.conf"),
            &format!("port = {replica_port}\nhot_standby = on\n"),
        );
        let replica_server = Server::spawn(replica_port, pg("postgres").arg("-D").arg(&replica));
        wait_for(Duration::from_secs(30), || ready(replica_port)).await;
        Self {
            primary_port,
            replica_port,
            dirs: vec![replica, primary],
            _servers: vec![replica_server, primary_server],
            _folder: folder,
        }
    }

    pub fn primary_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.primary_port
        )
    }

    pub fn replica_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.replica_port
        )
    }
}

impl Drop for PgPrimaryAndReplica {
    fn drop(&mut self) {
        // The postmaster's children go with it only when it is stopped, not killed.
        for dir in &self.dirs {
            let _ = pg("pg_ctl")
                .args(["stop", "-m", "immediate", "-D"])
                .arg(dir)
                .output();
        }
    }
}

fn ready(port: u16) -> bool {
    pg("pg_isready")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .expect("settings appended");
}

/// moto's S3 server (`moto_server`, from scripts/tools-requirements.txt, installed by
/// scripts/setup into .venv-tools) on a free port, with one bucket.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    _server: Server,
}

impl S3Server {
    pub async fn start() -> Self {
        let moto = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-tools/bin/moto_server");
        assert!(
            moto.exists(),
            "{} is missing: run scripts/setup",
            moto.display()
        );
        let port = free_port();
        let server = Server::spawn(
            port,
            Command::new(&moto).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(&endpoint).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto starts");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let bucket = "huimin-photos".to_owned();
        let made = http
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("bucket request");
        assert!(made.status().is_success(), "bucket made: {}", made.status());
        Self {
            endpoint,
            bucket,
            _server: server,
        }
    }

    /// whistle's variables for this bucket.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HUIMIN_PHOTOS_S3_BUCKET", self.bucket.clone()),
            ("HUIMIN_PHOTOS_S3_ENDPOINT", self.endpoint.clone()),
            ("HUIMIN_PHOTOS_S3_ACCESS_KEY_ID", "test".to_owned()),
            ("HUIMIN_PHOTOS_S3_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
    }

    /// The keys in the bucket (ListObjectsV2, read crudely: moto answers plain XML).
    pub async fn keys(&self) -> Vec<String> {
        let xml = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await
            .expect("list")
            .text()
            .await
            .expect("list body");
        xml.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// The headers the store answers a HEAD of `key` with.
    pub async fn head(&self, key: &str) -> reqwest::header::HeaderMap {
        reqwest::Client::new()
            .head(format!("{}/{}/{key}", self.endpoint, self.bucket))
            .send()
            .await
            .expect("head")
            .headers()
            .clone()
    }
}
