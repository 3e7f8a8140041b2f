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
    // Reflection must also serve the imports (google/protobuf/timestamp.proto),
    // or a generic client can't resolve the types that use them.
    let with_imports = protox::Compiler::new(["."])?
        .include_imports(true)
        .open_files(FILES)?
        .file_descriptor_set();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("huimin_descriptor.bin"),
        prost::Message::encode_to_vec(&with_imports),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
