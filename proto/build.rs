//! Generates the gRPC code from the .proto files with protox (pure Rust, so no
//! system `protoc` is needed), and keeps the encoded descriptor set for server
//! reflection.

use std::error::Error;
use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "bookstore/v1/common.proto",
    "bookstore/v1/transaction_verification.proto",
    "bookstore/v1/fraud_detection.proto",
    "bookstore/v1/suggestions.proto",
    "bookstore/v1/order_queue.proto",
    "bookstore/v1/payment.proto",
    "bookstore/v1/raft.proto",
    "bookstore/v1/books_db.proto",
    "bookstore/v1/order_executor.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let descriptors = protox::compile(FILES, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("bookstore_descriptor.bin"), descriptors.encode_to_vec())?;
    // Maps (a trace context) as BTreeMaps: ordered, so an order's record in the
    // executors' log serializes the same on every replica.
    tonic_prost_build::configure().btree_map(".").compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=bookstore");
    Ok(())
}
