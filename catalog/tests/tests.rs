//! Integration tests of the catalog: one binary, one module per concern.

mod common;
mod crash;
mod errors;
mod interop;
mod roundtrip;
mod sql;
