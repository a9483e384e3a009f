//! `etl curate` tests: canonical tags against the shared test vectors, the curate pipeline on
//! tables the tests build, and the near-duplicate recall / precision on a labelled fixture.
//! Run: `cargo test -p negopt-etl --test tests curate`.

mod canon;
mod catalog;
mod pipeline;
