//! Supervised background tasks: each takes the process's shutdown token,
//! and one that fails or panics is logged, counted and started again after
//! a backoff that grows while it keeps failing, until shutdown.
//!
//! A detached `tokio::spawn(loop { .. })` is what this replaces: it ignored
//! shutdown and, once it panicked, was silently gone for good.

use std::{sync::Arc, time::Duration};

use futures::{FutureExt as _, future::BoxFuture};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Restarts of background tasks, by task and by why (`error`, `panic`, `returned`).
pub const RESTARTS: &str = "background_task_restarts_total";

/// The first wait before a restart; doubled at each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run this long counts as healthy: the next failure starts from [`FIRST_BACKOFF`].
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

type Run = Arc<dyn Fn(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// A named background task. `run` should return when its token is cancelled;
/// returning early (with or without an error) gets it restarted.
#[derive(Clone)]
pub struct Task {
    name: &'static str,
    run: Run,
}

impl Task {
    pub fn new<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            name,
            run: Arc::new(move |token| run(token).boxed()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The running supervisors of one process.
pub struct Supervisor {
    token: CancellationToken,
    running: JoinSet<()>,
}

impl Supervisor {
    /// Starts every task under supervision; they stop when `token` is cancelled.
    pub fn start(tasks: Vec<Task>, token: CancellationToken) -> Self {
        let mut running = JoinSet::new();
        for task in tasks {
            running.spawn(supervise(task, token.clone()));
        }
        Self { token, running }
    }

    /// Cancels the tasks and waits at most `grace` for them to return.
    pub async fn stop(mut self, grace: Duration) {
        self.token.cancel();
        let all = async { while self.running.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background tasks did not stop within the grace period; abandoned");
            self.running.abort_all();
        }
    }
}

/// A task's handle that aborts the task when the supervising loop is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<anyhow::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn supervise(task: Task, token: CancellationToken) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = tokio::time::Instant::now();
        // Its own tokio task, so a panic is caught at the join and not here;
        // aborted with this loop, so an abandoned task does not run on.
        let mut running = AbortOnDrop(tokio::spawn((task.run)(token.clone())));
        let outcome = (&mut running.0).await;
        if token.is_cancelled() {
            return;
        }
        let why = match outcome {
            Ok(Ok(())) => {
                tracing::warn!(
                    task = task.name,
                    "background task returned before shutdown; restarting"
                );
                "returned"
            }
            Ok(Err(error)) => {
                tracing::warn!(task = task.name, error = %format!("{error:#}"), "background task failed; restarting");
                "error"
            }
            Err(_) => {
                tracing::error!(task = task.name, "background task panicked; restarting");
                "panic"
            }
        };
        metrics::counter!(RESTARTS, "task" => task.name, "why" => why).increment(1);
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_counted() {
        let metrics = crate::observe::prometheus();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = Task::new("panics", move |token: CancellationToken| {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("deliberate");
                }
                token.cancelled().await;
                Ok(())
            }
        });
        let supervisor = Supervisor::start(vec![task], CancellationToken::new());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while runs.load(Ordering::SeqCst) < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "two panics, then a run that lasts"
        );
        supervisor.stop(Duration::from_secs(1)).await;
        let text = metrics.render();
        assert!(
            text.lines().any(|line| line.starts_with(RESTARTS)
                && line.contains(r#"task="panics""#)
                && line.contains(r#"why="panic""#)
                && line.ends_with(" 2")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn every_task_stops_on_shutdown() {
        let stopped = Arc::new(AtomicU32::new(0));
        let tasks = (0..3)
            .map(|_| {
                let stopped = stopped.clone();
                Task::new("waits", move |token: CancellationToken| {
                    let stopped = stopped.clone();
                    async move {
                        token.cancelled().await;
                        stopped.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                })
            })
            .collect();
        let supervisor = Supervisor::start(tasks, CancellationToken::new());
        tokio::time::sleep(Duration::from_millis(50)).await;
        supervisor.stop(Duration::from_secs(1)).await;
        assert_eq!(stopped.load(Ordering::SeqCst), 3);
    }
}
