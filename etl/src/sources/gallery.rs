//! HTML gallery pages, read with per-site CSS selectors from a TOML site file:
//!
//! ```toml
//! start = "/gallery/page/0"        # first page, under the base URL
//! item = "div.item"                # one element per item
//! item_id = "data-id"              # the item element's attribute holding its id
//! prompt = ".prompt"               # inside the item
//! negative_prompt = ".negative"    # inside the item; absent element = no negative
//! parameters = ".params"           # optional: an A1111 parameter line inside the item
//! follow = "a.next"                # links to follow (only those on the same site)
//! ```
//!
//! Bodies are decoded by the `Content-Type` charset (default UTF-8); undecodable bytes make a
//! parse error rather than replacement characters. Links to other sites are counted
//! (`offsite link`) and not followed.

use scraper::{ElementRef, Html, Selector};
use serde::Deserialize;
use url::Url;

use super::{Page, PairRecord, ParseError, Parsed, Request, RequestKind, Source, a1111};

/// A site file: where things are on the site's pages.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Path of the first page, under the base URL.
    pub start: String,
    /// Selector of one item.
    pub item: String,
    /// Attribute of the item element that holds its id.
    pub item_id: String,
    /// Selector of the prompt inside an item.
    pub prompt: String,
    /// Selector of the negative prompt inside an item.
    pub negative_prompt: String,
    /// Selector of an A1111 parameter line inside an item.
    pub parameters: Option<String>,
    /// Selector of the links to follow.
    pub follow: String,
}

/// The site file of the fixture server's gallery.
pub const FIXTURE_SITE: &str = r#"
start = "/gallery/page/0"
item = "div.item"
item_id = "data-id"
prompt = ".prompt"
negative_prompt = ".negative"
parameters = ".params"
follow = "a.follow"
"#;

impl Site {
    /// Reads a site file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Site, String> {
        let site: Site = toml::from_str(text).map_err(|e| format!("site file {origin}: {e}"))?;
        Selectors::compile(&site).map_err(|e| format!("site file {origin}: {e}"))?;
        Ok(site)
    }

    /// The fixture gallery's site.
    pub fn fixture() -> Site {
        Site::from_toml(FIXTURE_SITE, "(built in)").expect("the built-in site file is valid")
    }
}

#[derive(Debug, Clone)]
struct Selectors {
    item: Selector,
    prompt: Selector,
    negative: Selector,
    parameters: Option<Selector>,
    follow: Selector,
}

impl Selectors {
    fn compile(site: &Site) -> Result<Selectors, String> {
        let one = |field: &str, s: &str| {
            Selector::parse(s).map_err(|e| format!("selector `{field} = {s:?}` is invalid: {e}"))
        };
        Ok(Selectors {
            item: one("item", &site.item)?,
            prompt: one("prompt", &site.prompt)?,
            negative: one("negative_prompt", &site.negative_prompt)?,
            parameters: site
                .parameters
                .as_deref()
                .map(|s| one("parameters", s))
                .transpose()?,
            follow: one("follow", &site.follow)?,
        })
    }
}

/// A gallery site at a base URL.
#[derive(Debug, Clone)]
pub struct Gallery {
    base: String,
    site: Site,
    selectors: Selectors,
}

impl Gallery {
    /// Crawls the site from `{base}{site.start}`.
    pub fn new(base: String, site: Site) -> Gallery {
        let selectors = Selectors::compile(&site).expect("a Site is validated when read");
        Gallery {
            base,
            site,
            selectors,
        }
    }
}

/// Decodes a body by its declared charset (UTF-8 when none), refusing malformed bytes.
pub fn decode_text(page: &Page) -> Result<String, ParseError> {
    let label = page
        .content_type
        .as_deref()
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("charset="))
        })
        .map(|s| s.trim_matches('"'));
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding
        .decode_without_bom_handling_and_without_replacement(&page.body)
        .map(|s| s.into_owned())
        .ok_or_else(|| ParseError::Encoding {
            url: page.url.clone(),
            encoding: encoding.name().to_string(),
        })
}

fn element_text(e: ElementRef<'_>) -> String {
    e.text().collect::<String>().trim().to_string()
}

impl Source for Gallery {
    fn name(&self) -> &'static str {
        "gallery"
    }

    fn seeds(&self) -> Vec<Request> {
        vec![Request::new(
            self.name(),
            format!("{}{}", self.base, self.site.start),
            RequestKind::Listing,
        )]
    }

    fn parse(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        let text = decode_text(page)?;
        let html = Html::parse_document(&text);
        let here = Url::parse(&page.url).map_err(|e| ParseError::Unexpected {
            url: page.url.clone(),
            message: format!("page URL does not parse: {e}"),
        })?;
        let mut parsed = Parsed::default();
        for item in html.select(&self.selectors.item) {
            let id = item.value().attr(&self.site.item_id).map(str::to_string);
            let prompt = item.select(&self.selectors.prompt).next().map(element_text);
            let (Some(item_id), Some(prompt)) = (id, prompt.filter(|p| !p.is_empty())) else {
                parsed.drop_item("no item id or prompt");
                continue;
            };
            let mut record = PairRecord {
                source: self.name().into(),
                item_id,
                url: page.url.clone(),
                prompt,
                negative_prompt: item
                    .select(&self.selectors.negative)
                    .next()
                    .map(element_text),
                ..PairRecord::default()
            };
            if let Some(sel) = &self.selectors.parameters
                && let Some(line) = item.select(sel).next().map(element_text)
            {
                a1111::fill_from_params(&a1111::parse(&line), &mut record);
            }
            parsed.records.push(record);
        }
        for link in html.select(&self.selectors.follow) {
            let Some(url) = link.value().attr("href").and_then(|h| here.join(h).ok()) else {
                parsed.drop_item("unreadable link");
                continue;
            };
            if url.host_str() == here.host_str()
                && url.port_or_known_default() == here.port_or_known_default()
            {
                parsed.next.push(Request::new(
                    &request.source,
                    url.as_str(),
                    RequestKind::Listing,
                ));
            } else {
                parsed.drop_item("offsite link");
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn page(body: &[u8], content_type: &str) -> Page {
        Page {
            url: "http://h:81/gallery/page/0".into(),
            status: 200,
            content_type: Some(content_type.into()),
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn gallery_reads_items_and_same_site_links() {
        let g = Gallery::new("http://h:81".into(), Site::fixture());
        assert_eq!(g.seeds()[0].url, "http://h:81/gallery/page/0");
        let html = r#"<html><body>
          <div class="item" data-id="g1"><p class="prompt"> a &amp;amp; b </p><p class="negative">blurry</p>
            <p class="params">Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x32, Model: m</p></div>
          <div class="item" data-id="g2"><p class="prompt">no neg</p></div>
          <div class="item"><p class="prompt">no id</p></div>
          <a class="follow" href="/gallery/page/1">next</a>
          <a class="follow" href="http://other:81/x">away</a>
          <a href="/not-followed">plain</a>
        </body></html>"#;
        let parsed = g
            .parse(&g.seeds()[0], &page(html.as_bytes(), "text/html"))
            .unwrap();
        assert_eq!(parsed.records.len(), 2);
        let a = &parsed.records[0];
        assert_eq!(a.prompt, "a &amp; b");
        assert_eq!(a.negative_prompt.as_deref(), Some("blurry"));
        assert_eq!(
            (a.steps, a.cfg_scale, a.seed, a.width, a.height),
            (Some(20), Some(7.0), Some(5), Some(64), Some(32))
        );
        assert_eq!(
            (a.sampler.as_deref(), a.model.as_deref()),
            (Some("Euler a"), Some("m"))
        );
        assert_eq!(parsed.records[1].negative_prompt, None);
        assert_eq!(parsed.next.len(), 1);
        assert_eq!(parsed.next[0].url, "http://h:81/gallery/page/1");
        assert_eq!(parsed.dropped.get("offsite link"), Some(&1));
        assert_eq!(parsed.dropped.get("no item id or prompt"), Some(&1));
    }

    #[test]
    fn gallery_decodes_declared_charset_and_refuses_bad_utf8() {
        let g = Gallery::new("http://h:81".into(), Site::fixture());
        let latin1 = b"<div class=\"item\" data-id=\"x\"><p class=\"prompt\">caf\xe9</p></div>";
        let parsed = g
            .parse(
                &g.seeds()[0],
                &page(latin1, "text/html; charset=windows-1252"),
            )
            .unwrap();
        assert_eq!(parsed.records[0].prompt, "café");
        let err = g
            .parse(&g.seeds()[0], &page(latin1, "text/html"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "body of http://h:81/gallery/page/0 is not valid UTF-8"
        );
    }

    #[test]
    fn gallery_site_file_errors_name_the_field() {
        let bad = FIXTURE_SITE.replace("div.item", "div[");
        let err = Site::from_toml(&bad, "sites/x.toml").unwrap_err();
        assert!(
            err.starts_with("site file sites/x.toml: selector `item"),
            "{err}"
        );
        let err = Site::from_toml("start = 1", "y.toml").unwrap_err();
        assert!(err.starts_with("site file y.toml:"), "{err}");
    }
}
