//! Compiles proto/pinbook/v2/*.proto with protox (pure Rust: no system `protoc`) and keeps the
//! descriptor set for gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    let files = ["pinbook/v2/book.proto", "pinbook/v2/admin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("pinbook_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // The uint64 fields of ShardStats by name, so the counters of the data plane's table fill
    // them by name (controlplane/src/stats_reply.rs).
    let shard_stats = descriptors
        .file
        .iter()
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "ShardStats")
        .ok_or("admin.proto has no ShardStats")?;
    let fields: Vec<String> = shard_stats
        .field
        .iter()
        .filter(|f| f.r#type() == prost_types::field_descriptor_proto::Type::Uint64)
        .map(|f| format!("    ({:?}, {}),\n", f.name(), f.number()))
        .collect();
    // Every pinbook.v2 method as "pinbook.v2.Service/Method": the only values the request
    // counter labels a call with (controlplane/src/request_count.rs).
    let methods: Vec<String> = descriptors
        .file
        .iter()
        .filter(|f| f.package() == "pinbook.v2")
        .flat_map(|f| &f.service)
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| format!("    \"pinbook.v2.{}/{}\",\n", s.name(), m.name()))
        })
        .collect();
    std::fs::write(
        out.join("pinbook_methods.rs"),
        format!(
            "/// Every pinbook.v2 method, as `pinbook.v2.Service/Method`.\n\
             pub const METHODS: &[&str] = &[\n{}];\n",
            methods.concat()
        ),
    )?;
    std::fs::write(
        out.join("shard_stats_fields.rs"),
        format!(
            "/// The uint64 fields of `ShardStats`: (name, field number).\n\
             pub const SHARD_STATS_FIELDS: &[(&str, u32)] = &[\n{}];\n",
            fields.concat()
        ),
    )?;
    // A trading status is large (its optional parts live inline): boxed, so that the queued
    // updates of every stream stay the size of a level update.
    tonic_prost_build::configure()
        .boxed(".pinbook.v2.BookUpdate.update.status")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
