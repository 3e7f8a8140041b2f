//! Commands that talk to a running huimin over gRPC, as any client would:
//! `huimin import payments` and `huimin import facts` log in as a staff member and
//! stream the file.

use std::{path::Path, time::Duration};

use huimin_kit::auth::BearerToken;
use huimin_proto::{
    identity::v1::{
        ImportFactsChunk, ImportFactsResponse, LoginRequest,
        identity_service_client::IdentityServiceClient,
    },
    ledger::v1::{
        ImportRollChunk, ImportRollResponse, RollKind, RunChecksOutcome, RunChecksRequest,
        ledger_service_client::LedgerServiceClient,
    },
};
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const CHUNK: usize = 1024 * 1024;

/// Connects to `server` and logs in; the channel and the staff token.
async fn login(server: &str, username: &str, password: &str) -> anyhow::Result<(Channel, String)> {
    let channel = Channel::from_shared(server.to_owned())
        .map_err(|_| anyhow::anyhow!("--server {server:?} is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {server}: {e}"))?;
    let token = IdentityServiceClient::new(channel.clone())
        .login(LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        })
        .await
        .map_err(describe)?
        .into_inner()
        .token;
    Ok((channel, token))
}

/// Logs in to `server` and imports the roll at `path` as `kind`, showing upload progress
/// on a terminal.
pub async fn import_payments(
    server: &str,
    username: &str,
    password: &str,
    path: &Path,
    kind: RollKind,
) -> anyhow::Result<ImportRollResponse> {
    let bytes = read(path).await?;
    let (channel, token) = login(server, username, password).await?;
    let mut ledger = LedgerServiceClient::with_interceptor(channel, BearerToken::new(&token)?);
    let file_name = file_name(path);
    let chunks: Vec<ImportRollChunk> = bytes
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, data)| ImportRollChunk {
            file_name: if i == 0 {
                file_name.clone()
            } else {
                String::new()
            },
            data: data.to_vec(),
            kind: kind as i32,
        })
        .collect();
    let (progress, stream) = uploading(chunks, bytes.len(), |c| c.data.len());
    let outcome = ledger.import_roll(stream).await;
    progress.finish_and_clear();
    outcome.map(tonic::Response::into_inner).map_err(describe)
}

/// Logs in to `server` and imports the reference dataset at `path` as `kind` from
/// the department `source`, showing upload progress on a terminal.
pub async fn import_facts(
    server: &str,
    username: &str,
    password: &str,
    path: &Path,
    kind: &str,
    source: &str,
) -> anyhow::Result<ImportFactsResponse> {
    let bytes = read(path).await?;
    let (channel, token) = login(server, username, password).await?;
    let mut identity = IdentityServiceClient::with_interceptor(channel, BearerToken::new(&token)?);
    let file_name = file_name(path);
    let chunks: Vec<ImportFactsChunk> = bytes
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, data)| {
            let first = |text: &str| {
                if i == 0 {
                    text.to_owned()
                } else {
                    String::new()
                }
            };
            ImportFactsChunk {
                file_name: first(&file_name),
                kind: first(kind),
                source_department: first(source),
                data: data.to_vec(),
            }
        })
        .collect();
    let (progress, stream) = uploading(chunks, bytes.len(), |c| c.data.len());
    let outcome = identity.import_facts(stream).await;
    progress.finish_and_clear();
    outcome.map(tonic::Response::into_inner).map_err(describe)
}

async fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The chunks as a stream that moves a terminal progress bar, which says, once every
/// byte is sent, that the server is now checking and applying the file.
fn uploading<C: Send + 'static>(
    chunks: Vec<C>,
    total: usize,
    len: fn(&C) -> usize,
) -> (
    ProgressBar,
    impl tokio_stream::Stream<Item = C> + Send + 'static,
) {
    let progress = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} uploading {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("template is valid"),
    );
    let bar = progress.clone();
    let stream = tokio_stream::StreamExt::map(tokio_stream::iter(chunks), move |chunk| {
        bar.inc(len(&chunk) as u64);
        if bar.position() == bar.length().unwrap_or(0) {
            // The server now checks and applies the file: no count to show, only that
            // it is working and for how long.
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} server checking and applying the file {elapsed}",
                )
                .expect("template is valid"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        chunk
    });
    (progress, stream)
}

/// Logs in to `server` and runs every cross-check rule over the county, showing each rule
/// as it finishes on a terminal.
pub async fn run_checks(
    server: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<RunChecksOutcome> {
    let (channel, token) = login(server, username, password).await?;
    let mut ledger = LedgerServiceClient::with_interceptor(channel, BearerToken::new(&token)?);
    let mut stream = ledger
        .run_checks(RunChecksRequest {})
        .await
        .map_err(describe)?
        .into_inner();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} rules {pos}/{len} {msg} elapsed {elapsed} eta {eta}",
        )
        .expect("template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message("syncing facts");
    let mut outcome = None;
    while let Some(progress) = stream.message().await.map_err(describe)? {
        if let Some(done) = progress.outcome {
            outcome = Some(done);
            break;
        }
        bar.set_length(u64::from(progress.rules_total));
        bar.set_position(u64::from(progress.rules_done));
        bar.set_message(format!(
            "{} ({} findings)",
            progress.rule_id, progress.rule_findings
        ));
    }
    bar.finish_and_clear();
    outcome.ok_or_else(|| anyhow::anyhow!("the server ended the run without an outcome"))
}

/// A status as a person at a terminal should read it: the message, then
/// every field violation on its own line.
fn describe(status: tonic::Status) -> anyhow::Error {
    let mut text = status.message().to_owned();
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            text.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    anyhow::anyhow!(text)
}
