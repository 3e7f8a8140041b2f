//! Building blocks for mapping service errors to `tonic::Status`.
//!
//! Messages here are read by people (citizens through the gateway, county
//! staff through the console), so they are in Simplified Chinese, and they
//! never contain SQL, internal error text or personal data.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// One problem with one field of a request or one cell of an imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, e.g. `id_number`, or for a file `第12行/身份证号`.
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Bytes of violation text one response lists at most. BadRequest details
/// travel base64-encoded in a gRPC trailer, and clients refuse big ones
/// (hyper, under tonic: 16 KiB of headers in all; grpc-java: 8 KiB of
/// metadata): a roll with thousands of bad rows must still come back as a
/// report, not as a protocol error.
pub const DETAILS_BUDGET: usize = 4 * 1024;

/// Whether one more violation still fits a response that lists
/// `listed_bytes` already; when it does, its size is added.
pub fn fits(listed_bytes: &mut usize, field: &str, description: &str) -> bool {
    // The protobuf framing of a violation is a few bytes.
    let cost = field.len() + description.len() + 8;
    if *listed_bytes + cost > DETAILS_BUDGET {
        return false;
    }
    *listed_bytes += cost;
    true
}

/// INVALID_ARGUMENT with google.rpc.BadRequest details that machines can read.
pub fn invalid_argument(message: impl Into<String>, violations: &[FieldViolation]) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// For failures the caller cannot fix; the cause is logged, not sent.
pub fn internal() -> Status {
    Status::internal("服务内部错误，请稍后再试")
}

/// For a dependency (the database) that is down.
pub fn unavailable() -> Status {
    Status::unavailable("服务暂时不可用，请稍后再试")
}

/// The database is down: logged here, UNAVAILABLE for the caller.
pub fn database_unavailable(error: &sqlx::Error) -> Status {
    tracing::warn!(%error, "database unavailable");
    unavailable()
}

/// Another huimin service could not be asked (down, or refused our token).
pub fn peer_unavailable(peer: &str, status: &Status) -> Status {
    tracing::warn!(peer, code = ?status.code(), "call to another service failed");
    unavailable()
}

/// An unexpected failure: logged with its causes, INTERNAL without them.
pub fn internal_error(error: &anyhow::Error) -> Status {
    tracing::error!(error = format!("{error:#}"), "internal error");
    internal()
}
