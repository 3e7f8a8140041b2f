//! The run's Redis keys: the server version for the report, a count of cached lookup pages (to
//! show the lookups really were served from the cache) and the clean-up at the end.

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;

/// A connection to the Redis the app uses, scoped to the run's key prefix.
pub struct Keyspace {
    conn: MultiplexedConnection,
    prefix: String,
}

impl Keyspace {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("REDIS_URL is malformed")?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// `redis_version` from `INFO server`.
    pub async fn version(&mut self) -> anyhow::Result<String> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.conn)
            .await
            .context("INFO server")?;
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned())
    }

    /// The run's keys matching `pattern` (after the prefix).
    pub async fn keys(&mut self, pattern: &str) -> anyhow::Result<Vec<String>> {
        let pattern = format!("{}{pattern}", self.prefix);
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await
                .context("SCAN")?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Deletes every key of the run.
    pub async fn clear(&mut self) -> anyhow::Result<usize> {
        let keys = self.keys("*").await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut self.conn)
                .await
                .context("DEL")?;
        }
        Ok(keys.len())
    }
}
