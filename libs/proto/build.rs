//! Generates Rust code (prost messages, tonic clients and servers) for every proto under
//! `proto/flightmesh`, plus one encoded `FileDescriptorSet` that carries the `google.api.http`
//! annotations: gRPC reflection serves it and the gateway transcodes REST from it.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = find_protos(&root.join("flightmesh"))?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = prost_build::Config::new();
    // The vendored protoc: no system protobuf compiler needed on any machine.
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("flightmesh_descriptor.bin"))
        .include_file("flightmesh.rs")
        .compile_with_config(
            config,
            &protos,
            &[
                root.clone(),
                root.join("third_party"),
                protoc_bin_vendored::include_path()?,
            ],
        )?;

    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}

/// Every `.proto` below `dir`, sorted so that generated code is stable.
fn find_protos(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(find_protos(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
