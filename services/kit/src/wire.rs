//! Conversions between domain values and protobuf well-known types, shared
//! by every service's gRPC edge.

use chrono::{DateTime, Utc};

/// A UTC instant as a `google.protobuf.Timestamp`.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A request's optional text field: trimmed, and `None` when empty (proto3
/// strings have no "unset").
pub fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
