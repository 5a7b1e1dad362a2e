//! Compiles `proto/dafka.proto` into Rust types with prost-build.
//! prost-build runs `protoc` (Debian: protobuf-compiler; or set PROTOC).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a build script binary is reused
    // between checkouts that share a target directory, so a path baked in
    // at compile time can name another checkout.
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("../../proto");
    let proto = proto_dir.join("dafka.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    prost_build::Config::new()
        // Content and ids are shared without copying once decoded.
        .bytes(["."])
        .compile_protos(&[&proto], &[&proto_dir])?;
    Ok(())
}
