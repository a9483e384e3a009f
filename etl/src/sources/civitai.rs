//! Civitai's public images API: `GET /api/v1/images?limit=200&sort=Newest&withMeta=true&
//! flatMeta=true&browsingLevel=1`, one page after another by `metadata.nextCursor` until it is
//! absent (the API refuses page numbers past 1000 items, cursors have no such limit).
//!
//! An item's `meta` may be absent, `null`, flat (`meta.prompt`, `meta.negativePrompt`, ...) or
//! wrapped (`{"id": .., "meta": {...}}`); all four are read. The model comes from `meta.Model`,
//! else the item's `baseModel`. Items without a prompt are counted as dropped (`no prompt`).

use serde_json::Value;

use super::cursor_feed::CursorFeed;
use super::json_fields::{float, int, text, text_or_empty, timestamp};
use super::{Page, PairRecord, ParseError, Parsed, Request, Source};

/// Path of the images endpoint under the base URL.
pub const PATH: &str = "/api/v1/images";
/// The fixed query of every page (the cursor is added after it).
pub const QUERY: &str = "limit=200&sort=Newest&withMeta=true&flatMeta=true&browsingLevel=1";

/// The Civitai images API at a base URL.
#[derive(Debug, Clone)]
pub struct Civitai {
    feed: CursorFeed,
}

impl Civitai {
    /// Crawls `{base}/api/v1/images`.
    pub fn new(base: String) -> Civitai {
        Civitai {
            feed: CursorFeed::new(
                &base,
                &format!("{PATH}?{QUERY}"),
                "items",
                "/metadata/nextCursor",
            ),
        }
    }
}

impl Source for Civitai {
    fn name(&self) -> &'static str {
        "civitai"
    }

    fn seeds(&self) -> Vec<Request> {
        vec![self.feed.seed(self.name())]
    }

    fn parse(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        let feed = self.feed.read(request, page)?;
        let mut parsed = Parsed::default();
        for item in &feed.items {
            match record(item) {
                Some(r) => parsed.records.push(r),
                None => parsed.drop_item("no prompt"),
            }
        }
        parsed.next.extend(feed.next);
        Ok(parsed)
    }
}

/// The item's generation metadata, whichever of the four shapes it has.
fn meta(item: &Value) -> Option<&Value> {
    let meta = item.get("meta").filter(|m| m.is_object())?;
    match meta.get("meta") {
        Some(inner) if inner.is_object() => Some(inner),
        _ => Some(meta),
    }
}

fn record(item: &Value) -> Option<PairRecord> {
    let meta = meta(item)?;
    let prompt = text(meta, "prompt")?;
    let item_id = text(item, "id")?;
    let size = text(meta, "Size").and_then(|s| {
        let (w, h) = s.split_once('x')?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    });
    Some(PairRecord {
        source: "civitai".into(),
        url: text(item, "url").unwrap_or_default(),
        prompt,
        negative_prompt: text_or_empty(meta, "negativePrompt"),
        model: text(meta, "Model").or_else(|| text(item, "baseModel")),
        sampler: text(meta, "sampler"),
        steps: int(meta, "steps"),
        cfg_scale: float(meta, "cfgScale"),
        seed: int(meta, "seed"),
        width: int(item, "width")
            .and_then(|w| i32::try_from(w).ok())
            .or(size.map(|s| s.0)),
        height: int(item, "height")
            .and_then(|h| i32::try_from(h).ok())
            .or(size.map(|s| s.1)),
        likes: item.pointer("/stats/likeCount").and_then(Value::as_i64),
        created_at: timestamp(item, "createdAt"),
        nsfw_level: text(item, "nsfwLevel"),
        item_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn page(body: &str) -> Page {
        Page {
            url: "http://h/api/v1/images".into(),
            status: 200,
            content_type: Some("application/json".into()),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn civitai_reads_every_meta_shape_and_the_cursor() {
        let src = Civitai::new("http://h".into());
        let seed = &src.seeds()[0];
        assert!(seed.url.starts_with("http://h/api/v1/images?limit=200&"));
        let body = r#"{"items":[
            {"id":1,"url":"u1","width":512,"height":768,"nsfwLevel":"None","createdAt":"2026-01-01T00:00:00Z",
             "stats":{"likeCount":3},"baseModel":"SD 1.5",
             "meta":{"prompt":"flat","negativePrompt":"blurry","sampler":"Euler a","cfgScale":7,"steps":"20","seed":42}},
            {"id":"2","meta":{"id":9,"meta":{"prompt":"wrapped","negativePrompt":"","Model":"m2","Size":"640x480"}}},
            {"id":3,"meta":null},
            {"id":4},
            {"id":5,"meta":{"negativePrompt":"x"}}
        ],"metadata":{"nextCursor":"abc|1"}}"#;
        let parsed = src.parse(seed, &page(body)).unwrap();
        assert_eq!(parsed.records.len(), 2);
        let a = &parsed.records[0];
        assert_eq!((a.item_id.as_str(), a.prompt.as_str()), ("1", "flat"));
        assert_eq!(a.negative_prompt.as_deref(), Some("blurry"));
        assert_eq!(a.model.as_deref(), Some("SD 1.5"));
        assert_eq!(
            (a.steps, a.cfg_scale, a.seed),
            (Some(20), Some(7.0), Some(42))
        );
        assert_eq!(
            (a.width, a.height, a.likes),
            (Some(512), Some(768), Some(3))
        );
        assert_eq!(a.nsfw_level.as_deref(), Some("None"));
        let b = &parsed.records[1];
        assert_eq!((b.item_id.as_str(), b.prompt.as_str()), ("2", "wrapped"));
        assert_eq!(b.negative_prompt.as_deref(), Some(""));
        assert_eq!(
            (b.model.as_deref(), b.width, b.height),
            (Some("m2"), Some(640), Some(480))
        );
        assert_eq!(parsed.dropped.get("no prompt"), Some(&3));
        assert_eq!(parsed.next.len(), 1);
        assert!(
            parsed.next[0].url.ends_with("&cursor=abc%7C1"),
            "{}",
            parsed.next[0].url
        );

        let last = src
            .parse(seed, &page(r#"{"items":[],"metadata":{}}"#))
            .unwrap();
        assert!(last.next.is_empty());
        let err = src.parse(seed, &page(r#"{"items":[{"id":1,"#)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed JSON from http://h/api/v1/images"),
            "{err}"
        );
    }
}
