//! A Playground-style JSON feed with the columns of the paper's public release
//! (`id, created_at, prompt, negative_prompt, likes, sampler, height, steps, width, cursor, url,
//! cfg_scale, model`), cursor paginated: `GET {base}/feed?limit=200[&cursor=C]` answers
//! `{"data": [rows], "next_cursor": C | null}`.
//!
//! The paper kept posts with at least one like: `min_likes` drops the rest, counted as
//! `below min likes`.

use serde_json::Value;

use super::json_fields::{float, int, parse_body, text, text_or_empty, timestamp};
use super::{Page, PairRecord, ParseError, Parsed, Request, RequestKind, Source};

/// The feed's path under the base URL.
pub const PATH: &str = "/feed";

/// A Playground-style feed at a base URL.
#[derive(Debug, Clone)]
pub struct Playground {
    base: String,
    min_likes: i64,
}

impl Playground {
    /// Crawls `{base}/feed`, keeping rows with at least `min_likes` likes.
    pub fn new(base: String, min_likes: i64) -> Playground {
        Playground { base, min_likes }
    }

    fn page_url(&self, cursor: Option<&str>) -> String {
        let mut url = format!("{}{PATH}?limit=200", self.base);
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.extend(url::form_urlencoded::byte_serialize(c.as_bytes()));
        }
        url
    }
}

impl Source for Playground {
    fn name(&self) -> &'static str {
        "playground"
    }

    fn seeds(&self) -> Vec<Request> {
        vec![Request::new(
            self.name(),
            self.page_url(None),
            RequestKind::Listing,
        )]
    }

    fn parse(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        let doc = parse_body(&page.url, &page.body)?;
        let rows =
            doc.get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| ParseError::Unexpected {
                    url: page.url.clone(),
                    message: "no `data` array".into(),
                })?;
        let mut parsed = Parsed::default();
        for row in rows {
            let likes = int(row, "likes");
            if likes.unwrap_or(0) < self.min_likes {
                parsed.drop_item("below min likes");
                continue;
            }
            let (Some(item_id), Some(prompt)) = (text(row, "id"), text(row, "prompt")) else {
                parsed.drop_item("no prompt");
                continue;
            };
            parsed.records.push(PairRecord {
                source: self.name().into(),
                item_id,
                url: text(row, "url").unwrap_or_default(),
                prompt,
                negative_prompt: text_or_empty(row, "negative_prompt"),
                model: text(row, "model"),
                sampler: text(row, "sampler"),
                steps: int(row, "steps"),
                cfg_scale: float(row, "cfg_scale"),
                seed: int(row, "seed"),
                width: int(row, "width").and_then(|v| i32::try_from(v).ok()),
                height: int(row, "height").and_then(|v| i32::try_from(v).ok()),
                likes,
                created_at: timestamp(row, "created_at"),
                nsfw_level: None,
            });
        }
        if let Some(cursor) = text(&doc, "next_cursor") {
            parsed.next.push(Request::new(
                &request.source,
                self.page_url(Some(&cursor)),
                RequestKind::Listing,
            ));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn playground_reads_rows_filters_likes_and_follows_cursor() {
        let src = Playground::new("http://h".into(), 1);
        let seed = &src.seeds()[0];
        assert_eq!(seed.url, "http://h/feed?limit=200");
        let body = r#"{"data":[
          {"id":"a","created_at":"2026-01-01T00:00:00Z","prompt":"p","negative_prompt":"n","likes":2,
           "sampler":"k_euler","height":512,"steps":30,"width":768,"cursor":"x","url":"u","cfg_scale":7.5,"model":"sd"},
          {"id":"b","prompt":"q","likes":0},
          {"id":"c","prompt":"r","likes":"5"},
          {"id":"d","likes":9}
        ],"next_cursor":"c2"}"#;
        let page = Page {
            url: seed.url.clone(),
            status: 200,
            content_type: None,
            body: Bytes::from(body),
        };
        let parsed = src.parse(seed, &page).unwrap();
        assert_eq!(parsed.records.len(), 2);
        let a = &parsed.records[0];
        assert_eq!(
            (a.prompt.as_str(), a.negative_prompt.as_deref()),
            ("p", Some("n"))
        );
        assert_eq!(
            (a.width, a.height, a.steps, a.cfg_scale),
            (Some(768), Some(512), Some(30), Some(7.5))
        );
        assert_eq!(parsed.records[1].negative_prompt, None);
        assert_eq!(parsed.dropped.get("below min likes"), Some(&1));
        assert_eq!(parsed.dropped.get("no prompt"), Some(&1));
        assert_eq!(parsed.next[0].url, "http://h/feed?limit=200&cursor=c2");
    }
}
