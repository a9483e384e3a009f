//! negopt ETL: crawl prompt / negative-prompt pairs into the catalog, then curate them.
#![deny(missing_docs)]

pub mod canon;
pub mod crawl;
pub mod curate;
pub mod fixtures;
pub mod grammar;
pub mod sources;
