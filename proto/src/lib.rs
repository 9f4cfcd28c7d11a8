//! The gRPC contracts of the bookstore's services (`proto/bookstore/v1/*.proto`), the
//! tonic code generated from them, and the conversions between their messages and
//! the domain's types ([`enums`], [`journey`], [`order_line`], [`vector_clock`]). No logic beyond converting.

/// Messages and services of package `bookstore.v1`.
pub mod v1 {
    tonic::include_proto!("bookstore.v1");
}

/// The encoded descriptor set of every .proto file here, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bookstore_descriptor.bin"));

pub mod enums;
pub mod journey;
pub mod order_line;
pub mod vector_clock;
