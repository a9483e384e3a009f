//! Integration tests of the `sql` binary: each drives the binary through `-c`, `-f`, stdin or a
//! pty against a small catalog built on disk (see `support.rs`) and checks exact outputs.

mod cancel;
mod errors;
mod examples;
mod formats;
mod meta;
mod support;
mod time_travel;
mod udfs;
mod writes;
