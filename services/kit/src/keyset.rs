//! Streaming a table in id order, one batch at a time, from a cursor: the
//! shape of every resumable export. Each batch is a fresh query (no long
//! transaction), and the cursor sent with a batch is its last id, so a
//! client that reconnects with it loses and repeats nothing.

use std::future::Future;

use tokio::sync::mpsc;
use tonic::Status;

/// Sends batches of `size` rows after `cursor` until `fetch` returns a short
/// one or the receiver goes away. `fetch(cursor)` returns the rows whose id
/// is above the cursor, in id order; `id` reads a row's id.
pub fn batches<T, F, Fut, E>(
    mut cursor: i64,
    size: i64,
    id: fn(&T) -> i64,
    fetch: F,
) -> mpsc::Receiver<Result<(Vec<T>, i64), Status>>
where
    T: Send + 'static,
    F: Fn(i64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<T>, E>> + Send,
    E: Into<Status> + Send,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let batch = match fetch(cursor).await {
                Ok(batch) => batch,
                Err(error) => {
                    let _ = tx.send(Err(error.into())).await;
                    return;
                }
            };
            let Some(last) = batch.last() else { return };
            cursor = id(last);
            let done = (batch.len() as i64) < size;
            if tx.send(Ok((batch, cursor))).await.is_err() || done {
                return;
            }
        }
    });
    rx
}
