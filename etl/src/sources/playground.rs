//! A Playground-style JSON feed with the columns of the paper's public release
//! (`id, created_at, prompt, negative_prompt, likes, sampler, height, steps, width, cursor, url,
//! cfg_scale, model`), cursor paginated: `GET {base}/feed?limit=200[&cursor=C]` answers
//! `{"data": [rows], "next_cursor": C | null}`.
//!
//! The paper kept posts with at least one like: `min_likes` drops the rest, counted as
//! `below min likes`.
use super::cursor_feed::CursorFeed;
use super::json_fields::{float, int, text, text_or_empty, timestamp};
use super::{Page, PairRecord, ParseError, Parsed, Request, Source};

/// The feed's path under the base URL.
pub const PATH: &str = "/feed";

/// A Playground-style feed at a base URL.
#[derive(Debug, Clone)]
pub struct Playground {
    feed: CursorFeed,
    min_likes: i64,
}

impl Playground {
    /// Crawls `{base}/feed`, keeping rows with at least `min_likes` likes.
    pub fn new(base: String, min_likes: i64) -> Playground {
        Playground {
            feed: CursorFeed::new(&base, &format!("{PATH}?limit=200"), "data", "/next_cursor"),
            min_likes,
        }
    }
}

impl Source for Playground {
    fn name(&self) -> &'static str {
        "playground"
    }

    fn seeds(&self) -> Vec<Request> {
        vec![self.feed.seed(self.name())]
    }

    fn parse(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        let feed = self.feed.read(request, page)?;
        let mut parsed = Parsed::default();
        for row in &feed.items {
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
        parsed.next.extend(feed.next);
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
