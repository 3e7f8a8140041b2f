//! Streaming a table in id order, one batch at a time, from a cursor: the
//! shape of every resumable export. Each batch is a fresh query (no long
//! transaction), and the cursor sent with a batch is its last id, so a
//! client that reconnects with it loses and repeats nothing.

use std::{future::Future, pin::Pin, sync::Arc};

use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::Status;

/// What a resumable export reads: a table in id order, under the caller's filter.
pub trait Export: Send + Sync + 'static {
    type Row: Send + 'static;
    type Error: Into<Status> + Send;
    /// The response message that carries one batch.
    type Message: Send + 'static;
    /// Rows a batch holds when the client does not say, and at most.
    const DEFAULT_BATCH: u32;
    const MAX_BATCH: u32;

    /// A row's id, the cursor of the batch it ends.
    fn id(row: &Self::Row) -> i64;

    /// At most `size` rows whose id is above `after`, in id order.
    fn batch(&self, after: i64, size: i64) -> Batch<'_, Self>;

    /// The message of a batch whose last row has id `cursor`.
    fn message(rows: Vec<Self::Row>, cursor: i64) -> Self::Message;
}

/// The rows of one batch, as [`Export::batch`] reads them.
pub type Batch<'a, S> =
    futures::future::BoxFuture<'a, Result<Vec<<S as Export>::Row>, <S as Export>::Error>>;

/// What an export RPC returns.
pub type ExportStream<M> = Pin<Box<dyn futures::Stream<Item = Result<M, Status>> + Send>>;

/// The one export handler: batches of rows of `source` after the request's cursor (as
/// many as the request asks, within the source's bounds), each sent as
/// [`Export::message`], until the rows run out or the client goes away.
pub fn export<S: Export>(
    source: S,
    after_cursor: i64,
    batch_size: u32,
) -> ExportStream<S::Message> {
    let size = i64::from(crate::page::size(
        batch_size,
        S::DEFAULT_BATCH,
        S::MAX_BATCH,
    ));
    let source = Arc::new(source);
    let rx = batches(after_cursor.max(0), size, S::id, move |cursor| {
        let source = source.clone();
        async move { source.batch(cursor, size).await }
    });
    Box::pin(
        ReceiverStream::new(rx)
            .map(move |batch| batch.map(|(rows, cursor)| S::message(rows, cursor))),
    )
}

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
