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
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(value) {
            return s;
        }
    }
    value.to_string()
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
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, &str, Vec<(String, String)>)> = vec![
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
    fn a1111_size_and_get() {
        let got = parse("a\nSteps: 20, Size: 512x768, Seed: 1");
        assert_eq!(got.size(), Some((512, 768)));
        assert_eq!(got.get("Seed"), Some("1"));
        assert_eq!(got.get("seed"), None);
        assert_eq!(parse("a\nSteps: 20, Size: big, Seed: 1").size(), None);
    }
}
