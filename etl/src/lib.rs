//! negopt ETL: crawl prompt / negative-prompt pairs into the catalog, then curate them.
//!
//! - [`sources`]: where pairs come from — each a [`sources::Source`] (Civitai API, Playground
//!   feed, HTML galleries, A1111 image text) plus local-file [`sources::import`]; the A1111
//!   parser is [`sources::a1111::parse`].
//! - [`crawl`]: the polite, resumable crawler writing `raw_pages` and `raw_pairs`.
//! - [`fixtures`]: a local server imitating every source (and a real crawl's hazards), for
//!   tests, benches and the demo; its prompts come from [`grammar`], the shapes-world vocabulary.
//! - [`canon`], [`curate`]: canonical tags and the DataFusion curation plan.
//!
//! ```
//! use negopt_etl::sources::a1111;
//! let p = a1111::parse("a fox\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7");
//! assert_eq!((p.prompt.as_str(), p.negative_prompt.as_str()), ("a fox", "blurry"));
//! assert_eq!(p.get("CFG scale"), Some("7"));
//! ```
#![deny(missing_docs)]

pub mod canon;
pub mod crawl;
pub mod curate;
pub mod fixtures;
pub mod grammar;
pub mod sources;
