//! Phase 3, the provincial export: `LedgerService/ExportPayments` of every payment in batches
//! of 5,000, against `psql \copy` of the same columns of the same rows to `/dev/null`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use huimin_proto::ledger::v1::{ExportPaymentsRequest, ledger_service_client::LedgerServiceClient};
use tonic::transport::Channel;

use crate::{import::psql, progress, scratch::Scratch};

const BATCH: u32 = 5_000;

/// Streams the whole export as an admin; returns the rows received and the time to the end
/// of the stream.
pub async fn export(
    channel: Channel,
    token: &str,
    expected: u64,
) -> anyhow::Result<(u64, Duration)> {
    let mut request = tonic::Request::new(ExportPaymentsRequest {
        batch_size: BATCH,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("token is not ASCII")?,
    );
    let bar = progress::bar("huimin: ExportPayments", expected);
    let started = Instant::now();
    let mut stream = LedgerServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .export_payments(request)
        .await
        .context("ExportPayments refused")?
        .into_inner();
    let mut rows = 0u64;
    while let Some(batch) = stream.message().await.context("ExportPayments broke off")? {
        rows += batch.payments.len() as u64;
        bar.set_position(rows);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    if rows != expected {
        bail!("ExportPayments sent {rows} rows; the ledger holds {expected}");
    }
    Ok((rows, elapsed))
}

/// The baseline: the columns the export reads, in id order, copied out by `psql`.
pub async fn raw_export(scratch: &Scratch) -> anyhow::Result<Duration> {
    let spinner = progress::spinner("baseline: psql \\copy of ledger.payments to /dev/null");
    let elapsed = psql(
        &scratch.url,
        "\\copy (SELECT id, person_key, name_masked, id_masked, household_code, village_code, \
         program_code, period, amount_fen, kind, reverses, bank_masked, roll_id, posted_at \
         FROM ledger.payments ORDER BY id) TO '/dev/null'",
    )
    .await?;
    spinner.finish_and_clear();
    Ok(elapsed)
}
