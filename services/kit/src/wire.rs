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
