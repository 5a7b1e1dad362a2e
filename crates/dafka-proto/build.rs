//! Compiles `proto/dafka.proto` into Rust types with prost-build.
//! prost-build runs `protoc` (Debian: protobuf-compiler; or set PROTOC).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let proto = format!("{proto_dir}/dafka.proto");
    println!("cargo:rerun-if-changed={proto}");
    prost_build::Config::new()
        // Content and ids are shared without copying once decoded.
        .bytes(["."])
        .compile_protos(&[proto.as_str()], &[proto_dir])?;
    Ok(())
}
