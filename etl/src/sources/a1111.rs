//! Automatic1111 "parameters" text: the parser, and the `a1111` source that crawls images
//! carrying that text in a PNG `tEXt`/`iTXt` chunk or a JPEG/WebP EXIF UserComment.
//!
//! The parser follows A1111's own `parse_generation_parameters`
//! (`modules/infotext_utils.py`, formerly `generation_parameters_copypaste.py`), as restated in
//! `shared/testdata/a1111/README.md`:
//!
//! ```text
//! prompt line(s)
//! Negative prompt: first negative line      <- switches to the negative prompt
//! more negative lines
//! Steps: 20, Sampler: Euler a, CFG scale: 7  <- parameters, only if the pattern matches ≥ 3 times
//! ```
//!
//! One A1111 quirk is kept on purpose: pieces are joined with `\n` only once the text built so far
//! is non-empty, so an empty `Negative prompt:` line followed by `n2` gives `n2`, not `\nn2`.
//!
//! Test: `cargo test -p negopt-etl a1111`.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use url::Url;

use super::image_text::read_parameters;
use super::json_fields::parse_body;
use super::{Page, PairRecord, ParseError, Parsed, Request, RequestKind, Source};

/// A1111's key-value pattern for the parameter line, verbatim.
static PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#)
        .expect("A1111 parameter pattern is a valid regex")
});

/// The marker that switches from the prompt to the negative prompt.
const NEGATIVE_MARKER: &str = "Negative prompt:";

/// What A1111 reads back from its "parameters" text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parameters {
    /// The positive prompt (lines joined with `\n`).
    pub prompt: String,
    /// The negative prompt; empty when the text has none.
    pub negative_prompt: String,
    /// The parameter line's `key: value` pairs in order of first appearance (a repeated key keeps
    /// its first position and takes the last value, as a Python dict does). Quoted values are
    /// unquoted as JSON strings.
    pub params: Vec<(String, String)>,
}

impl Parameters {
    /// The value of parameter `key` (exact, case-sensitive, as A1111 writes it).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `Size: WxH` as `(width, height)`, when present and numeric.
    pub fn size(&self) -> Option<(u32, u32)> {
        let (w, h) = self.get("Size")?.split_once('x')?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    }
}

/// Parses A1111 "parameters" text exactly as A1111 does. Never fails: any text is a prompt.
pub fn parse(text: &str) -> Parameters {
    let mut lines: Vec<&str> = text.trim().split('\n').collect();
    let last = lines.pop().unwrap_or_default();
    let param_line = if PARAM.find_iter(last).count() >= 3 {
        last
    } else {
        lines.push(last);
        ""
    };

    let mut out = Parameters::default();
    let mut in_negative = false;
    for line in lines {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix(NEGATIVE_MARKER) {
            in_negative = true;
            line = rest.trim();
        }
        let target = if in_negative {
            &mut out.negative_prompt
        } else {
            &mut out.prompt
        };
        if !target.is_empty() {
            target.push('\n');
        }
        target.push_str(line);
    }

    for caps in PARAM.captures_iter(param_line) {
        let key = caps[1].to_string();
        let value = unquote(&caps[2]);
        match out.params.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.params.push((key, value)),
        }
    }
    out
}

/// A1111's `unquote`: a value wrapped in double quotes is a JSON string; when it does not decode,
/// the raw text is kept.
fn unquote(value: &str) -> String {
    if value.len() >= 2
        && value.starts_with('"')
        && value.ends_with('"')
        && let Ok(s) = serde_json::from_str::<String>(value)
    {
        return s;
    }
    value.to_string()
}

/// Copies the common A1111 parameters (Steps, Sampler, CFG scale, Seed, Size, Model) into a
/// record; values that do not parse as numbers are left out.
pub fn fill_from_params(params: &Parameters, record: &mut PairRecord) {
    let num = |key: &str| params.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    record.steps = num("Steps");
    record.seed = num("Seed");
    record.sampler = params.get("Sampler").map(str::to_string);
    record.model = params.get("Model").map(str::to_string);
    record.cfg_scale = params.get("CFG scale").and_then(|v| v.trim().parse().ok());
    if let Some((w, h)) = params.size() {
        record.width = i32::try_from(w).ok();
        record.height = i32::try_from(h).ok();
    }
}

/// A site of images with A1111 text: `GET {base}/a1111/index/0` answers
/// `{"images": [url, ...], "next": url | null}` (URLs may be relative); each image is fetched
/// and its embedded text parsed. The item id is the image file's name without extension.
#[derive(Debug, Clone)]
pub struct A1111 {
    base: String,
}

/// Path of the first index page under the base URL.
pub const INDEX_PATH: &str = "/a1111/index/0";

impl A1111 {
    /// Crawls `{base}/a1111/index/0` and the images it lists.
    pub fn new(base: String) -> A1111 {
        A1111 { base }
    }

    fn listing(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        let doc = parse_body(&page.url, &page.body)?;
        let here = Url::parse(&page.url).map_err(|e| ParseError::Unexpected {
            url: page.url.clone(),
            message: format!("page URL does not parse: {e}"),
        })?;
        let images =
            doc.get("images")
                .and_then(Value::as_array)
                .ok_or_else(|| ParseError::Unexpected {
                    url: page.url.clone(),
                    message: "no `images` array".into(),
                })?;
        let mut parsed = Parsed::default();
        let links = images
            .iter()
            .map(|v| (v.as_str(), RequestKind::Item))
            .chain([(
                doc.get("next").and_then(Value::as_str),
                RequestKind::Listing,
            )]);
        for (link, kind) in links {
            match link.map(|l| here.join(l)) {
                Some(Ok(url)) => {
                    parsed
                        .next
                        .push(Request::new(&request.source, url.as_str(), kind))
                }
                Some(Err(_)) => parsed.drop_item("unreadable link"),
                None if kind == RequestKind::Item => parsed.drop_item("unreadable link"),
                None => {}
            }
        }
        Ok(parsed)
    }

    fn image(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        let text = read_parameters(&page.body).map_err(|source| ParseError::Image {
            url: page.url.clone(),
            source,
        })?;
        let params = parse(&text);
        let item_id = Url::parse(&request.url)
            .ok()
            .and_then(|u| u.path_segments()?.next_back().map(str::to_string))
            .map(|name| name.split('.').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let mut parsed = Parsed::default();
        if params.prompt.is_empty() || item_id.is_empty() {
            parsed.drop_item("no item id or prompt");
            return Ok(parsed);
        }
        let mut record = PairRecord {
            source: request.source.clone(),
            item_id,
            url: request.url.clone(),
            prompt: params.prompt.clone(),
            negative_prompt: Some(params.negative_prompt.clone()),
            ..PairRecord::default()
        };
        fill_from_params(&params, &mut record);
        parsed.records.push(record);
        Ok(parsed)
    }
}

impl Source for A1111 {
    fn name(&self) -> &'static str {
        "a1111"
    }

    fn seeds(&self) -> Vec<Request> {
        vec![Request::new(
            self.name(),
            format!("{}{INDEX_PATH}", self.base),
            RequestKind::Listing,
        )]
    }

    fn parse(&self, request: &Request, page: &Page) -> Result<Parsed, ParseError> {
        match request.kind {
            RequestKind::Listing => self.listing(request, page),
            RequestKind::Item => self.image(request, page),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// (text, prompt, negative, params) — the README's examples first, then edge cases checked
    /// by hand against A1111's Python.
    #[test]
    fn a1111_parse_table() {
        let std3 = [("Steps", "20"), ("Sampler", "Euler a"), ("CFG scale", "7")];
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            Vec<(String, String)>,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            // README examples
            ("a cat\nNegative prompt: dog", "a cat", "dog", vec![]),
            ("a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7.5", "a fox", "",
             p(&[("Steps", "20"), ("Sampler", "Euler a"), ("CFG scale", "7.5")])),
            ("p\nNegative prompt: n1\nn2\nSteps: 20, Sampler: DDIM, CFG scale: 6, Seed: 7", "p", "n1\nn2",
             p(&[("Steps", "20"), ("Sampler", "DDIM"), ("CFG scale", "6"), ("Seed", "7")])),
            // prompt only
            ("just a prompt", "just a prompt", "", vec![]),
            ("", "", "", vec![]),
            ("   \n  ", "", "", vec![]),
            // multi-line prompt
            ("line one\nline two\nSteps: 20, Sampler: Euler a, CFG scale: 7", "line one\nline two", "", p(&std3)),
            // surrounding whitespace on lines is stripped
            ("  a cat  \n  Negative prompt:   ugly  \nSteps: 20, Sampler: Euler a, CFG scale: 7", "a cat", "ugly", p(&std3)),
            // empty negative prompt
            ("a\nNegative prompt:\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a", "", p(&std3)),
            // empty Negative prompt line then more lines: no leading newline (A1111 quirk)
            ("a\nNegative prompt:\nn2\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a", "n2", p(&std3)),
            // three-line negative
            ("a\nNegative prompt: x\ny\nz\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a", "x\ny\nz", p(&std3)),
            // negative line is the last line and has < 3 matches
            ("a\nNegative prompt: blurry, lowres", "a", "blurry, lowres", vec![]),
            // only parameters
            ("Steps: 20, Sampler: Euler a, CFG scale: 7", "", "", p(&std3)),
            // two matches on the last line: not parameters
            ("a\nSteps: 20, Sampler: Euler a", "a\nSteps: 20, Sampler: Euler a", "", vec![]),
            // a prompt line that looks like key: value but has < 3 matches
            ("style: anime, mood: calm", "style: anime, mood: calm", "", vec![]),
            // a one-line prompt with ≥ 3 key:value matches IS parsed as parameters (as A1111 does)
            ("aa: 1, bb: 2, cc: 3", "", "", p(&[("aa", "1"), ("bb", "2"), ("cc", "3")])),
            // one-letter keys never match the pattern (`\w[\w \-/]+` needs two characters)
            ("a: 1, b: 2, c: 3", "a: 1, b: 2, c: 3", "", vec![]),
            // quoted values with commas and colons
            ("a\nSteps: 20, Sampler: Euler a, CFG scale: 7, Lora hashes: \"x: abc, y: def\"", "a", "",
             p(&[("Steps", "20"), ("Sampler", "Euler a"), ("CFG scale", "7"), ("Lora hashes", "x: abc, y: def")])),
            // quoted value with an escaped newline and quote
            ("a\nSteps: 20, Sampler: Euler a, CFG scale: 7, Note: \"l1\\nl2 \\\"q\\\"\"", "a", "",
             p(&[("Steps", "20"), ("Sampler", "Euler a"), ("CFG scale", "7"), ("Note", "l1\nl2 \"q\"")])),
            // quoted value that is not valid JSON is kept raw
            ("a\nSteps: 20, Sampler: Euler a, CFG scale: 7, Bad: \"\\x\"", "a", "",
             p(&[("Steps", "20"), ("Sampler", "Euler a"), ("CFG scale", "7"), ("Bad", "\"\\x\"")])),
            // keys with spaces, dashes and slashes
            ("a\nSteps: 30, Schedule type: Karras, Model hash: 6ce0161689, Hires upscale: 2, Face-restore/model: gfpgan", "a", "",
             p(&[("Steps", "30"), ("Schedule type", "Karras"), ("Model hash", "6ce0161689"), ("Hires upscale", "2"), ("Face-restore/model", "gfpgan")])),
            // Size is kept as text
            ("a\nSteps: 20, Size: 512x768, Seed: 1", "a", "", p(&[("Steps", "20"), ("Size", "512x768"), ("Seed", "1")])),
            // an empty value
            ("a\nSteps: 20, VAE: , Seed: 1", "a", "", p(&[("Steps", "20"), ("VAE", ""), ("Seed", "1")])),
            // repeated key: first position, last value
            ("a\nSteps: 20, Seed: 1, Steps: 30", "a", "", p(&[("Steps", "30"), ("Seed", "1")])),
            // Unicode prompt, negative and value
            ("一只猫, 夕焼け\nNegative prompt: 模糊, flou\nSteps: 20, Sampler: Euler a, Modèle: été", "一只猫, 夕焼け", "模糊, flou",
             p(&[("Steps", "20"), ("Sampler", "Euler a"), ("Modèle", "été")])),
            // emoji and weights
            ("(masterpiece:1.2), 🦊 <lora:fox:0.8>\nNegative prompt: (worst quality:1.4), EasyNegative\nSteps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7",
             "(masterpiece:1.2), 🦊 <lora:fox:0.8>", "(worst quality:1.4), EasyNegative",
             p(&[("Steps", "25"), ("Sampler", "DPM++ 2M Karras"), ("CFG scale", "7")])),
            // "Negative prompt:" inside a line does not switch
            ("a Negative prompt: b\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a Negative prompt: b", "", p(&std3)),
            // a second marker line just continues the negative (its marker is stripped)
            ("a\nNegative prompt: x\nNegative prompt: y", "a", "x\ny", vec![]),
            // lowercase marker does not switch
            ("a\nnegative prompt: x", "a\nnegative prompt: x", "", vec![]),
            // trailing blank lines are stripped before the split
            ("a\nNegative prompt: n\nSteps: 20, Sampler: Euler a, CFG scale: 7\n\n\n", "a", "n", p(&std3)),
            // CRLF line ends: the \r is stripped from each line
            ("a\r\nNegative prompt: n\r\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a", "n", p(&std3)),
            // blank line inside the prompt is kept
            ("a\n\nb\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a\n\nb", "", p(&std3)),
            // a realistic full line
            ("masterpiece, 1girl\nNegative prompt: lowres, bad anatomy\nSteps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Clip skip: 2, Version: v1.10.1",
             "masterpiece, 1girl", "lowres, bad anatomy",
             p(&[("Steps", "28"), ("Sampler", "DPM++ 2M"), ("Schedule type", "Karras"), ("CFG scale", "7"), ("Seed", "1234567890"), ("Size", "512x768"), ("Model hash", "6ce0161689"), ("Model", "v1-5-pruned-emaonly"), ("Denoising strength", "0.7"), ("Clip skip", "2"), ("Version", "v1.10.1")])),
            // spaces around the separator and value
            ("a\nSteps:20,Sampler:   Euler,CFG scale:5", "a", "", p(&[("Steps", "20"), ("Sampler", "Euler"), ("CFG scale", "5")])),
        ];
        assert!(
            cases.len() >= 30,
            "the acceptance list asks for at least 30 cases"
        );
        for (text, prompt, negative, params) in cases {
            let got = parse(text);
            assert_eq!(got.prompt, prompt, "prompt of {text:?}");
            assert_eq!(got.negative_prompt, negative, "negative of {text:?}");
            assert_eq!(got.params, params, "params of {text:?}");
        }
    }

    #[test]
    fn a1111_source_lists_and_reads_images() {
        use super::super::image_text::{PngChunk, png_with_text};
        let src = A1111::new("http://h".into());
        let seed = &src.seeds()[0];
        let index = br#"{"images":["/a1111/img/7.png","img/8.jpg",3],"next":"/a1111/index/1"}"#;
        let page = |url: &str, body: Vec<u8>| Page {
            url: url.into(),
            status: 200,
            content_type: None,
            body: body.into(),
        };
        let parsed = src.parse(seed, &page(&seed.url, index.to_vec())).unwrap();
        let urls: Vec<(&str, RequestKind)> = parsed
            .next
            .iter()
            .map(|r| (r.url.as_str(), r.kind))
            .collect();
        assert_eq!(
            urls,
            [
                ("http://h/a1111/img/7.png", RequestKind::Item),
                ("http://h/a1111/index/img/8.jpg", RequestKind::Item),
                ("http://h/a1111/index/1", RequestKind::Listing)
            ]
        );
        assert_eq!(parsed.dropped.get("unreadable link"), Some(&1));

        let text = "a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 64x64, Model: tiny";
        let img = &parsed.next[0];
        let got = src
            .parse(
                img,
                &page(&img.url, png_with_text(text, PngChunk::Text, [1, 2, 3])),
            )
            .unwrap();
        let r = &got.records[0];
        assert_eq!((r.item_id.as_str(), r.prompt.as_str()), ("7", "a cat"));
        assert_eq!(r.negative_prompt.as_deref(), Some("blurry"));
        assert_eq!(
            (r.steps, r.cfg_scale, r.seed, r.width),
            (Some(20), Some(7.0), Some(9), Some(64))
        );
        assert_eq!(r.model.as_deref(), Some("tiny"));
        let err = src
            .parse(img, &page(&img.url, b"nope".to_vec()))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("image http://h/a1111/img/7.png: not a PNG"),
            "{err}"
        );
    }

    #[test]
    fn a1111_size_and_get() {
        let got = parse("a\nSteps: 20, Size: 512x768, Seed: 1");
        assert_eq!(got.size(), Some((512, 768)));
        assert_eq!(got.get("Seed"), Some("1"));
        assert_eq!(got.get("seed"), None);
        assert_eq!(parse("a\nSteps: 20, Size: big, Seed: 1").size(), None);
    }
}
