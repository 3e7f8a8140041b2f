//! huimin's protobuf contracts, generated at build time from `huimin/**/*.proto`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The encoded `FileDescriptorSet` of every huimin contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/huimin_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("huimin.common.v1");
    }
}
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("huimin.identity.v1");
    }
}
pub mod ledger {
    pub mod v1 {
        tonic::include_proto!("huimin.ledger.v1");
    }
}
pub mod registry {
    pub mod v1 {
        tonic::include_proto!("huimin.registry.v1");
    }
}
pub mod notify {
    pub mod v1 {
        tonic::include_proto!("huimin.notify.v1");
    }
}
pub mod whistle {
    pub mod v1 {
        tonic::include_proto!("huimin.whistle.v1");
    }
}
