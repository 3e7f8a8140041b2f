//! Compiles the contracts with protox (pure Rust, so no protoc is needed) and
//! writes the descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

const FILES: &[&str] = &[
    "huimin/common/v1/common.proto",
    "huimin/identity/v1/identity.proto",
    "huimin/ledger/v1/ledger.proto",
    "huimin/registry/v1/registry.proto",
    "huimin/notify/v1/notify.proto",
    "huimin/whistle/v1/whistle.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=huimin");
    let descriptors = protox::compile(FILES, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("huimin_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
