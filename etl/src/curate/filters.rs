//! Stage 2: the rules that drop a row, each with a named reason, checked in this order (the
//! first rule that fires names the drop; cheap rules run before language identification):
//!
//! | reason                   | fires when (either field = prompt or negative, normal forms)           |
//! |--------------------------|------------------------------------------------------------------------|
//! | `empty_prompt`           | the prompt has no canonical tags                                       |
//! | `empty_negative`         | the negative prompt has no canonical tags                              |
//! | `short_negative`         | the negative has fewer than `min_negative_chars` characters            |
//! | `negative_equals_prompt` | both fields have the same canonical tags                               |
//! | `too_long_chars`         | either field has more than `max_chars` characters                      |
//! | `too_many_tokens`        | either field has more than `max_tokens` words (letter/digit runs)      |
//! | `url_or_garbage`         | either field has fewer than `min_letters` letters once URLs are gone   |
//! | `spam_repetition`        | either field repeats more than `max_repeated_tag_share` of its pieces  |
//! | `spam_symbols`           | more than `max_non_letter_share` of a field's characters are symbols   |
//! | `nsfw`                   | policy `drop`, and the prompt names a listed word or the row's        |
//! |                          | `nsfw_level` is a listed level                                         |
//! | `not_english`            | a field is written in a script no allowed language uses (whatlang), or |
//! |                          | whatlang's trigram model names another language with enough confidence |
//! |                          | (method `script`: only for Latin text with non-ASCII letters)           |
//!
//! Repetition and symbol shares are taken on [`crate::canon::strip_weights`] forms, so A1111
//! brackets and weights do not count as symbols and `(a:1.2), a` counts `a` twice. Commas,
//! whitespace and apostrophes are not symbols.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use whatlang::{Detector, Lang, Script};

use super::config::{FilterConfig, LanguageMethod, NsfwPolicy};
use crate::canon;

/// A named reason a row was dropped by a filter rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterReason {
    /// The prompt has no tags.
    EmptyPrompt,
    /// The negative prompt has no tags.
    EmptyNegative,
    /// The negative prompt is shorter than `min_negative_chars`.
    ShortNegative,
    /// The negative prompt has the prompt's tags.
    NegativeEqualsPrompt,
    /// A field is longer than `max_chars`.
    TooLongChars,
    /// A field has more words than `max_tokens`.
    TooManyTokens,
    /// A field is URLs only, or too few letters to be text.
    UrlOrGarbage,
    /// A field repeats its pieces too often.
    SpamRepetition,
    /// A field is mostly symbols.
    SpamSymbols,
    /// The prompt names an NSFW word and the policy is `drop`.
    Nsfw,
    /// The text is confidently in a language that is not allowed.
    NotEnglish,
}

impl FilterReason {
    /// The reason as stored in `curation_rejects.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyPrompt => "empty_prompt",
            Self::EmptyNegative => "empty_negative",
            Self::ShortNegative => "short_negative",
            Self::NegativeEqualsPrompt => "negative_equals_prompt",
            Self::TooLongChars => "too_long_chars",
            Self::TooManyTokens => "too_many_tokens",
            Self::UrlOrGarbage => "url_or_garbage",
            Self::SpamRepetition => "spam_repetition",
            Self::SpamSymbols => "spam_symbols",
            Self::Nsfw => "nsfw",
            Self::NotEnglish => "not_english",
        }
    }
}

/// One row's text as the filters see it.
#[derive(Debug, Clone, Copy)]
pub struct RowText<'a> {
    /// Normal form of the prompt.
    pub prompt: &'a str,
    /// Normal form of the negative prompt.
    pub negative: &'a str,
    /// Canonical tags of the prompt (sorted, unique).
    pub prompt_tags: &'a [&'a str],
    /// Canonical tags of the negative prompt (sorted, unique).
    pub negative_tags: &'a [&'a str],
    /// The source's own NSFW rating (`raw_pairs.nsfw_level`), if any.
    pub nsfw_level: Option<&'a str>,
}

static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:https?://|www\.)\S*").expect("static regex compiles"));

/// The filter rules compiled from a [`FilterConfig`].
#[derive(Debug)]
pub struct Filters {
    config: FilterConfig,
    /// Sorted, for binary search (a few dozen words: cheaper than hashing every prompt word).
    nsfw_words: Vec<String>,
    nsfw_phrases: Vec<Vec<String>>,
    nsfw_levels: Vec<String>,
    allowed: Vec<Lang>,
    /// Writing systems of the allowed languages.
    allowed_scripts: Vec<Script>,
    detector: Detector,
}

impl Filters {
    /// Compiles the rules; the config must have passed validation.
    pub fn new(config: &FilterConfig) -> Self {
        let (phrases, words): (Vec<_>, Vec<_>) = config
            .nsfw
            .words
            .iter()
            .map(|w| words_of(w))
            .partition(|w| w.len() > 1);
        let allowed: Vec<Lang> = config
            .language
            .allowed
            .iter()
            .filter_map(Lang::from_code)
            .collect();
        let allowed_scripts = Script::all()
            .iter()
            .filter(|s| s.langs().iter().any(|l| allowed.contains(l)))
            .copied()
            .collect();
        Self {
            config: config.clone(),
            nsfw_words: {
                let mut words: Vec<String> = words.into_iter().flatten().collect();
                words.sort_unstable();
                words.dedup();
                words
            },
            nsfw_phrases: phrases,
            nsfw_levels: config.nsfw.levels.clone(),
            allowed,
            allowed_scripts,
            detector: Detector::new(),
        }
    }

    /// The first rule the row breaks, or `None` when it passes all.
    pub fn check(&self, row: &RowText<'_>) -> Option<FilterReason> {
        let c = &self.config;
        let fields = [row.prompt, row.negative];
        if row.prompt_tags.is_empty() {
            return Some(FilterReason::EmptyPrompt);
        }
        if row.negative_tags.is_empty() {
            return Some(FilterReason::EmptyNegative);
        }
        if row.negative.chars().take(c.min_negative_chars).count() < c.min_negative_chars {
            return Some(FilterReason::ShortNegative);
        }
        if row.prompt_tags == row.negative_tags {
            return Some(FilterReason::NegativeEqualsPrompt);
        }
        // A text has at most as many characters as bytes, and at most (bytes + 1) / 2 words:
        // the counts are only taken where the bound could be broken.
        if fields
            .iter()
            .any(|f| f.len() > c.max_chars && f.chars().count() > c.max_chars)
        {
            return Some(FilterReason::TooLongChars);
        }
        if fields
            .iter()
            .any(|f| f.len().div_ceil(2) > c.max_tokens && canon::word_count(f) > c.max_tokens)
        {
            return Some(FilterReason::TooManyTokens);
        }
        if c.min_letters > 0 && fields.iter().any(|f| too_few_letters(f, c.min_letters)) {
            return Some(FilterReason::UrlOrGarbage);
        }
        let stripped = fields.map(canon::strip_weights);
        if stripped.iter().any(|f| {
            let (pieces, repeated) = repeated_pieces(f);
            pieces >= c.min_repetition_tags
                && repeated as f64 / pieces as f64 > c.max_repeated_tag_share
        }) {
            return Some(FilterReason::SpamRepetition);
        }
        if stripped
            .iter()
            .any(|f| symbol_share(f) > c.max_non_letter_share)
        {
            return Some(FilterReason::SpamSymbols);
        }
        if c.nsfw.policy == NsfwPolicy::Drop && self.is_nsfw(row.prompt, row.nsfw_level) {
            return Some(FilterReason::Nsfw);
        }
        if self.is_foreign(&stripped) {
            return Some(FilterReason::NotEnglish);
        }
        None
    }

    /// Flags of a kept row: `nsfw` when the policy is `flag` and the prompt names a listed word
    /// or the row's `nsfw_level` is listed.
    pub fn flags(&self, prompt: &str, nsfw_level: Option<&str>) -> Vec<&'static str> {
        if self.config.nsfw.policy == NsfwPolicy::Flag && self.is_nsfw(prompt, nsfw_level) {
            vec!["nsfw"]
        } else {
            Vec::new()
        }
    }

    /// Whether the row's `nsfw_level` is a listed level (ignoring case and surrounding spaces),
    /// or `prompt` names a listed word or phrase, on word boundaries, ignoring case.
    pub fn is_nsfw(&self, prompt: &str, nsfw_level: Option<&str>) -> bool {
        let listed_level = |level: &str| {
            self.nsfw_levels.iter().any(|l| {
                l.eq_ignore_ascii_case(level) || (!level.is_ascii() && *l == level.to_lowercase())
            })
        };
        if nsfw_level.map(str::trim).is_some_and(listed_level) {
            return true;
        }
        if self.nsfw_phrases.is_empty() {
            return words(prompt).any(|w| self.is_nsfw_word(&w));
        }
        let words: Vec<Cow<'_, str>> = words(prompt).collect();
        words.iter().any(|w| self.is_nsfw_word(w))
            || self.nsfw_phrases.iter().any(|phrase| {
                words
                    .windows(phrase.len())
                    .any(|window| window.iter().zip(phrase).all(|(w, p)| w.as_ref() == p))
            })
    }

    fn is_nsfw_word(&self, word: &str) -> bool {
        self.nsfw_words
            .binary_search_by(|w| w.as_str().cmp(word))
            .is_ok()
    }

    /// Whether a field is in a script no allowed language uses, or the trigram model is sure
    /// enough that the text is in a language not allowed.
    fn is_foreign(&self, stripped: &[String; 2]) -> bool {
        let lang = &self.config.language;
        if self.allowed.is_empty() {
            return false;
        }
        let foreign_script =
            |f: &String| script_of(f).is_some_and(|s| !self.allowed_scripts.contains(&s));
        if stripped.iter().any(foreign_script) {
            return true;
        }
        let judge = match lang.method {
            LanguageMethod::Trigrams => true,
            LanguageMethod::Script => stripped
                .iter()
                .any(|f| f.chars().any(|c| c.is_alphabetic() && !c.is_ascii())),
        };
        if !judge {
            return false;
        }
        let text = format!("{}. {}", stripped[0], stripped[1]);
        if text.chars().count() < lang.min_chars {
            return false;
        }
        self.detector.detect(&text).is_some_and(|info| {
            !self.allowed.contains(&info.lang()) && info.confidence() >= lang.min_confidence
        })
    }
}

/// Lowercase runs of letters and digits (borrowed when already lowercase).
fn words(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.chars().any(char::is_uppercase) {
                Cow::Owned(w.to_lowercase())
            } else {
                Cow::Borrowed(w)
            }
        })
}

/// [`words`], owned (the configured words and phrases).
fn words_of(text: &str) -> Vec<String> {
    words(text).map(Cow::into_owned).collect()
}

/// The writing system whatlang finds in `text`: for ASCII text (most prompts) Latin when it has a
/// letter, else none, which is what `whatlang::detect_script` answers, without its per-character
/// scan of 25 scripts.
fn script_of(text: &str) -> Option<Script> {
    if text.is_ascii() {
        text.bytes()
            .any(|b| b.is_ascii_alphabetic())
            .then_some(Script::Latin)
    } else {
        whatlang::detect_script(text)
    }
}

/// Whether `text` has fewer than `min` letters outside URLs (counting stops at `min`).
fn too_few_letters(text: &str, min: usize) -> bool {
    let mut letters = 0;
    let mut count = |s: &str| {
        letters += s
            .chars()
            .filter(|c| c.is_alphabetic())
            .take(min - letters)
            .count();
        letters >= min
    };
    let mut start = 0;
    for url in URL.find_iter(text) {
        if count(&text[start..url.start()]) {
            return false;
        }
        start = url.end();
    }
    !count(&text[start..])
}

/// (pieces, pieces that repeat an earlier piece) of a `", "`-joined list, ignoring case.
fn repeated_pieces(stripped: &str) -> (usize, usize) {
    let mut pieces: Vec<Cow<'_, str>> = stripped
        .split(", ")
        .filter(|p| !p.is_empty())
        .map(|piece| {
            if piece.chars().any(char::is_uppercase) {
                Cow::Owned(piece.to_lowercase())
            } else {
                Cow::Borrowed(piece)
            }
        })
        .collect();
    let total = pieces.len();
    pieces.sort_unstable();
    pieces.dedup();
    (total, total - pieces.len())
}

/// Share of characters that are symbols: not letters, whitespace, commas or apostrophes.
fn symbol_share(stripped: &str) -> f64 {
    let counted = stripped
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, ',' | '\''));
    let (mut total, mut symbols) = (0usize, 0usize);
    for c in counted {
        total += 1;
        if !c.is_alphabetic() {
            symbols += 1;
        }
    }
    if total == 0 {
        0.0
    } else {
        symbols as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curate::config::CurateConfig;
    use crate::curate::normalise::normalise;

    fn verdict_with(config: &FilterConfig, prompt: &str, negative: &str) -> Option<&'static str> {
        let (p, n) = (normalise(prompt), normalise(negative));
        let (pt, nt) = (canon::tags(&p), canon::tags(&n));
        let pt: Vec<&str> = pt.iter().map(String::as_str).collect();
        let nt: Vec<&str> = nt.iter().map(String::as_str).collect();
        let row = RowText {
            prompt: &p,
            negative: &n,
            prompt_tags: &pt,
            negative_tags: &nt,
            nsfw_level: None,
        };
        Filters::new(config).check(&row).map(FilterReason::as_str)
    }

    fn verdict(prompt: &str, negative: &str) -> Option<&'static str> {
        verdict_with(&FilterConfig::default(), prompt, negative)
    }

    const PROMPT: &str = "a lighthouse on a cliff at sunset, dramatic clouds";
    const NEGATIVE: &str = "lowres, blurry, watermark";

    #[test]
    fn an_ordinary_row_passes() {
        assert_eq!(verdict(PROMPT, NEGATIVE), None);
        assert_eq!(
            verdict(
                "1girl, solo",
                "(worst quality:1.4), (low quality:1.4), easynegative"
            ),
            None
        );
    }

    #[test]
    fn empty_fields() {
        assert_eq!(verdict("", NEGATIVE), Some("empty_prompt"));
        assert_eq!(verdict(PROMPT, " , <lora:x:1>, "), Some("empty_negative"));
    }

    #[test]
    fn short_negative() {
        assert_eq!(verdict(PROMPT, "ab"), Some("short_negative"));
        assert_eq!(verdict(PROMPT, "ugly"), None);
    }

    #[test]
    fn negative_equal_to_prompt_after_canonicalisation() {
        assert_eq!(
            verdict("Blurry, lowres", "(lowres:1.2), blurry"),
            Some("negative_equals_prompt")
        );
    }

    #[test]
    fn too_long_in_characters_and_words() {
        let config = FilterConfig {
            max_chars: 40,
            max_tokens: 5,
            ..FilterConfig::default()
        };
        assert_eq!(
            verdict_with(
                &config,
                "a cat",
                "blurry, blurry and lowres picture, very dark"
            ),
            Some("too_long_chars")
        );
        assert_eq!(
            verdict_with(&config, "a cat", "bad, low, res, ugly, grainy, dark"),
            Some("too_many_tokens")
        );
        assert_eq!(
            verdict_with(&config, "a cat", "bad, low, res, ugly, dark"),
            None
        );
    }

    #[test]
    fn url_only_and_garbage() {
        assert_eq!(
            verdict(PROMPT, "https://example.com/neg?id=42"),
            Some("url_or_garbage")
        );
        assert_eq!(verdict("www.example.com", NEGATIVE), Some("url_or_garbage"));
        assert_eq!(verdict(PROMPT, "1234 5678"), Some("url_or_garbage"));
    }

    #[test]
    fn repeated_pieces_are_spam() {
        assert_eq!(
            verdict(PROMPT, "ugly, ugly, ugly, (ugly:1.3), blurry"),
            Some("spam_repetition")
        );
        // Half repeated is still allowed: 2 of 4 pieces.
        assert_eq!(verdict(PROMPT, "ugly, ugly, blurry, blurry"), None);
        // Fewer than min_repetition_tags pieces are not judged.
        assert_eq!(verdict(PROMPT, "ugly, ugly, ugly"), None);
    }

    #[test]
    fn symbol_heavy_text_is_spam() {
        assert_eq!(verdict(PROMPT, "bad ### !!! $$$ ???"), Some("spam_symbols"));
        // Weights and brackets are not symbols.
        assert_eq!(verdict(PROMPT, "((((ugly:1.4)))), [[[bad]]]"), None);
    }

    #[test]
    fn nsfw_policy_flag_keeps_and_drop_drops() {
        let config = CurateConfig::default().filter;
        assert_eq!(verdict("nude portrait, oil painting", NEGATIVE), None);
        assert_eq!(Filters::new(&config).flags("Nude portrait", None), ["nsfw"]);
        // A word inside another word does not match, and negatives are not checked.
        assert!(
            Filters::new(&config)
                .flags("sextant on a desk", None)
                .is_empty()
        );
        assert_eq!(verdict(PROMPT, "nsfw, lowres"), None);
        let mut drop = config.clone();
        drop.nsfw.policy = NsfwPolicy::Drop;
        drop.nsfw.words.push("red light".into());
        assert_eq!(verdict_with(&drop, "nude portrait", NEGATIVE), Some("nsfw"));
        assert_eq!(
            verdict_with(&drop, "a street, red light district", NEGATIVE),
            Some("nsfw")
        );
        assert_eq!(verdict_with(&drop, "a red traffic light", NEGATIVE), None);
        assert!(Filters::new(&drop).flags("nude portrait", None).is_empty());
    }

    #[test]
    fn nsfw_level_of_the_source_counts() {
        let filters = Filters::new(&FilterConfig::default());
        for level in ["X", "mature", " Mature ", "16"] {
            assert_eq!(filters.flags(PROMPT, Some(level)), ["nsfw"], "{level:?}");
        }
        for level in [None, Some("None"), Some("Soft"), Some("1"), Some("")] {
            assert!(filters.flags(PROMPT, level).is_empty(), "{level:?}");
        }
        let mut ignore = FilterConfig::default();
        ignore.nsfw.levels.clear();
        assert!(Filters::new(&ignore).flags(PROMPT, Some("X")).is_empty());
        let mut drop = FilterConfig::default();
        drop.nsfw.policy = NsfwPolicy::Drop;
        let (pt, nt) = (["a"], ["b"]);
        let row = RowText {
            prompt: PROMPT,
            negative: NEGATIVE,
            prompt_tags: &pt,
            negative_tags: &nt,
            nsfw_level: Some("X"),
        };
        assert_eq!(Filters::new(&drop).check(&row), Some(FilterReason::Nsfw));
    }

    #[test]
    fn foreign_languages_are_dropped_when_sure() {
        assert_eq!(
            verdict(
                "un chat noir assis sur une chaise dans la cuisine",
                "flou, mauvaise qualité"
            ),
            Some("not_english")
        );
        assert_eq!(
            verdict("一只黑猫坐在厨房的椅子上，阳光明媚", "模糊，低质量"),
            Some("not_english")
        );
        // A non-Latin script in one field is enough, however short.
        assert_eq!(verdict("девушка", NEGATIVE), Some("not_english"));
        assert_eq!(verdict(PROMPT, "размытый"), Some("not_english"));
        // Accented English words stay English; plain-ASCII Spanish passes under `script` ...
        assert_eq!(
            verdict("a café terrace at night, naïve art, cliché", NEGATIVE),
            None
        );
        let spanish = "una chica con el pelo largo en la playa al atardecer, cielo rojo";
        assert_eq!(verdict(spanish, NEGATIVE), None);
        // Too short to judge.
        assert_eq!(verdict("gato", "feo, malo"), None);
        // ... and is caught by `trigrams`.
        let mut trigrams = FilterConfig::default();
        trigrams.language.method = LanguageMethod::Trigrams;
        let negative = "borroso, mala calidad, marca de agua, texto";
        assert_eq!(
            verdict_with(&trigrams, spanish, negative),
            Some("not_english")
        );
        let mut off = FilterConfig::default();
        off.language.allowed.clear();
        assert_eq!(
            verdict_with(
                &off,
                "un chat noir assis sur une chaise dans la cuisine",
                "flou, mauvais"
            ),
            None
        );
    }
}
