//! The listing shape both JSON feeds share: pages at `{base}{path}?{query}` that name the next
//! page by an opaque cursor (`&cursor=C`), until a page names none.

use serde_json::Value;

use super::json_fields::parse_body;
use super::{Page, ParseError, Request, RequestKind};

/// Where a cursor-paged JSON feed lives and where its pages keep items and the next cursor.
#[derive(Debug, Clone)]
pub struct CursorFeed {
    /// `{base}{path}?{query}`, the first page's URL.
    first: String,
    /// Key of the item array in each page.
    items: &'static str,
    /// JSON pointer to the next cursor in each page.
    cursor: &'static str,
}

/// One page of a feed: its items and the request for the page after it.
pub struct FeedPage {
    /// The page's items, in order.
    pub items: Vec<Value>,
    /// The next page, when the page names a cursor.
    pub next: Option<Request>,
}

impl CursorFeed {
    /// A feed whose first page is `{base}{path_and_query}`, with items under `items` and the
    /// next cursor at the JSON pointer `cursor`.
    pub fn new(
        base: &str,
        path_and_query: &str,
        items: &'static str,
        cursor: &'static str,
    ) -> CursorFeed {
        CursorFeed {
            first: format!("{base}{path_and_query}"),
            items,
            cursor,
        }
    }

    /// The URL of the page at `cursor` (the first page without one).
    pub fn page_url(&self, cursor: Option<&str>) -> String {
        let mut url = self.first.clone();
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.extend(url::form_urlencoded::byte_serialize(c.as_bytes()));
        }
        url
    }

    /// The first page's request, for `source`.
    pub fn seed(&self, source: &str) -> Request {
        Request::new(source, self.page_url(None), RequestKind::Listing)
    }

    /// Splits a fetched page into its items and the next page's request.
    pub fn read(&self, request: &Request, page: &Page) -> Result<FeedPage, ParseError> {
        let mut doc = parse_body(&page.url, &page.body)?;
        let next = doc.pointer(self.cursor).and_then(cursor_text).map(|c| {
            Request::new(
                &request.source,
                self.page_url(Some(&c)),
                RequestKind::Listing,
            )
        });
        match doc.get_mut(self.items).map(Value::take) {
            Some(Value::Array(items)) => Ok(FeedPage { items, next }),
            _ => Err(ParseError::Unexpected {
                url: page.url.clone(),
                message: format!("no `{}` array", self.items),
            }),
        }
    }
}

/// A cursor is a non-empty string or a number; anything else ends the feed.
fn cursor_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
