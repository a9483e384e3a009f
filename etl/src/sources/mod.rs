//! Where pairs come from. Each source is one [`Source`]: it names its seed requests, and turns
//! each fetched [`Page`] into [`PairRecord`]s plus further requests (the next cursor page, the
//! images an index lists, the next gallery page).
//!
//! ```text
//! seeds ──► Request ──fetch──► Page ──Source::parse──► Parsed { records, next requests, drops }
//!              ▲                                                        │
//!              └────────────────────── frontier ◄──────────────────────┘
//! ```
//!
//! Sources never talk to the network themselves; the crawler fetches for them, so politeness,
//! retries and limits live in one place (`crate::crawl`).

pub mod a1111;
pub mod civitai;
pub mod cursor_feed;
pub mod gallery;
pub mod image_text;
pub mod import;
pub mod json_fields;
pub mod playground;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// What a request fetches, so that its source knows how to read the answer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub enum RequestKind {
    /// A page listing items (JSON feed page, HTML gallery page, image index).
    Listing,
    /// One item's own document (an image carrying A1111 text).
    Item,
}

/// One URL to fetch for one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Request {
    /// The source's name (`civitai`, `playground`, `gallery`, `a1111`).
    pub source: String,
    /// Absolute URL.
    pub url: String,
    /// How to read the answer.
    pub kind: RequestKind,
}

impl Request {
    /// A request of `kind` for `source`.
    pub fn new(source: &str, url: impl Into<String>, kind: RequestKind) -> Request {
        Request {
            source: source.to_string(),
            url: url.into(),
            kind,
        }
    }
}

/// A fetched answer: final URL after redirects, status, type and the decoded body bytes.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL the body came from (after redirects).
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body, after content decoding (gzip).
    pub body: Bytes,
}

/// One prompt / negative pair and what the source says about how it was made.
/// The crawler adds `fetched_at` and the page hash when it stores it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairRecord {
    /// The source's name.
    pub source: String,
    /// The item's id within the source; `(source, item_id)` is the key.
    pub item_id: String,
    /// Where the item lives (its page or image URL).
    pub url: String,
    /// The positive prompt.
    pub prompt: String,
    /// The negative prompt: `None` when the source has none, `Some("")` when it is empty.
    pub negative_prompt: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Sampler name.
    pub sampler: Option<String>,
    /// Diffusion steps.
    pub steps: Option<i64>,
    /// Classifier-free guidance scale.
    pub cfg_scale: Option<f64>,
    /// Generation seed.
    pub seed: Option<i64>,
    /// Image width in pixels.
    pub width: Option<i32>,
    /// Image height in pixels.
    pub height: Option<i32>,
    /// Likes (or the source's equivalent).
    pub likes: Option<i64>,
    /// When the item was published.
    pub created_at: Option<DateTime<Utc>>,
    /// The source's NSFW level, as it writes it.
    pub nsfw_level: Option<String>,
}

/// What a source made of one page.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Records found.
    pub records: Vec<PairRecord>,
    /// Further requests (same source).
    pub next: Vec<Request>,
    /// Items seen but not kept, counted by reason (e.g. `below min likes`, `no prompt`).
    pub dropped: BTreeMap<String, u64>,
}

impl Parsed {
    /// Counts one dropped item under `reason`.
    pub fn drop_item(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_default() += 1;
    }
}

/// Why a page could not be read. The page is still stored in `raw_pages` with this text.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not the JSON the source expects.
    #[error("malformed JSON from {url}: {message}")]
    Json {
        /// The page's URL.
        url: String,
        /// serde_json's message (line and column).
        message: String,
    },
    /// The body is not valid text in its declared (or default UTF-8) encoding.
    #[error("body of {url} is not valid {encoding}")]
    Encoding {
        /// The page's URL.
        url: String,
        /// The encoding tried.
        encoding: String,
    },
    /// An image that carries no readable A1111 text.
    #[error("image {url}: {source}")]
    Image {
        /// The image's URL.
        url: String,
        /// What is wrong with it.
        source: image_text::ImageTextError,
    },
    /// The answer has the wrong status or shape for this source.
    #[error("unexpected answer from {url}: {message}")]
    Unexpected {
        /// The page's URL.
        url: String,
        /// What was expected.
        message: String,
    },
}

/// A place pairs come from: seeds, and how to read what the crawler fetched.
pub trait Source: Send + Sync {
    /// The source's name, stored in every record and request.
    fn name(&self) -> &'static str;
    /// The first requests of a fresh crawl.
    fn seeds(&self) -> Vec<Request>;
    /// Reads one fetched page: records, next requests, counted drops.
    fn parse(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError>;
}

/// The crawlable sources, by name, for `--sources`.
pub const SOURCE_NAMES: [&str; 4] = ["civitai", "playground", "gallery", "a1111"];

/// How to build each source: base URLs and per-source options.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Base URL of each source, by name.
    pub base_urls: BTreeMap<String, String>,
    /// Playground: keep posts with at least this many likes.
    pub min_likes: i64,
    /// Gallery: the site file (CSS selectors); `None` uses the fixture site's.
    pub gallery_site: Option<gallery::Site>,
}

/// Builds the named sources; errors name an unknown source or a missing base URL.
pub fn build(names: &[String], options: &SourceOptions) -> Result<Vec<Arc<dyn Source>>, String> {
    names
        .iter()
        .map(|name| {
            let base = options
                .base_urls
                .get(name)
                .ok_or_else(|| {
                    format!("source `{name}` has no base URL (help: --base-url {name}=URL)")
                })?
                .trim_end_matches('/')
                .to_string();
            let source: Arc<dyn Source> = match name.as_str() {
                "civitai" => Arc::new(civitai::Civitai::new(base)),
                "playground" => Arc::new(playground::Playground::new(base, options.min_likes)),
                "gallery" => Arc::new(gallery::Gallery::new(
                    base,
                    options
                        .gallery_site
                        .clone()
                        .unwrap_or_else(gallery::Site::fixture),
                )),
                "a1111" => Arc::new(a1111::A1111::new(base)),
                other => {
                    return Err(format!(
                        "unknown source `{other}` (known: {})",
                        SOURCE_NAMES.join(", ")
                    ));
                }
            };
            Ok(source)
        })
        .collect()
}
