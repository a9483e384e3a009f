//! Integration tests of the `etl` crate (one test binary; each module is one area).
mod crawl;
mod curate;
