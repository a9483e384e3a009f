//! Canonical tags of a prompt and the near-duplicate similarity built on them.
//!
//! The rules and their test vectors live in `shared/testdata/dedup/` (README, `canon_cases.jsonl`,
//! `canon_pairs.jsonl`); the tests at the bottom of this file and `etl/tests/curate/canon.rs` check
//! every vector. In short, the tags of a text are found by:
//!
//! ```text
//! lowercase → each `<...>` (A1111 `<lora:name:0.7>`) becomes a space
//!           → a `:number` right before `)` or `]` is deleted (A1111 weights)
//!           → the characters ( ) [ ] { } \ are deleted
//!           → split on `,` only → collapse whitespace, trim → drop empty pieces → sorted set
//! ```
//!
//! Embedding names (`EasyNegative`, `badhandv4`) stay ordinary tags: dropping them would merge
//! "EasyNegative, lowres" with "lowres", two negatives that steer a model differently.
//!
//! Two rows are near duplicates when `min(J(prompt tags), J(negative tags)) ≥ threshold`, with
//! `J(∅, ∅) = 1`. The minimum, not the Jaccard of both fields' union, because many rows share a long
//! boilerplate negative: under the union "a cat" and "a dog" with the same 20-tag negative score 0.91.
//!
//! ```
//! use negopt_etl::canon;
//! let a = canon::tags("(masterpiece:1.2), 1girl, <lora:detail:0.6>");
//! assert_eq!(a, ["1girl", "masterpiece"]);
//! assert_eq!(canon::strip_weights("((cat:1.3)), [dog]"), "cat, dog");
//! assert_eq!(canon::jaccard(&a, &canon::tags("1girl")), 0.5);
//! ```

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

/// An A1111 extra-network tag such as `<lora:add_detail:0.7>` or `<lyco:x>`.
static ANGLE_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<[^>]*>").expect("static regex compiles"));

/// An A1111 weight `:1.2` (spaces allowed around the number, sign optional, `.5` allowed) right
/// before the `)` or `]` that closes its group; the closing bracket is captured to be kept.
static WEIGHT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r":\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*([)\]])").expect("static regex compiles")
});

/// Characters A1111 uses for emphasis and escaping, deleted from tags.
fn is_emphasis(c: char) -> bool {
    matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '\\')
}

/// The text with extra-network tags and weights removed, still cased and unsplit (borrowed when
/// there was nothing to remove).
fn without_networks_and_weights(text: &str) -> Cow<'_, str> {
    match ANGLE_TAG.replace_all(text, " ") {
        Cow::Borrowed(text) => WEIGHT.replace_all(text, "$1"),
        Cow::Owned(spaced) => Cow::Owned(WEIGHT.replace_all(&spaced, "$1").into_owned()),
    }
}

/// Appends `piece` to `out` with emphasis characters deleted and whitespace collapsed to single
/// spaces; returns whether anything was appended.
fn push_piece(piece: &str, out: &mut String) -> bool {
    let start = out.len();
    for word in piece
        .split(|c: char| c.is_whitespace() || is_emphasis(c))
        .filter(|w| !w.is_empty())
    {
        if out.len() > start {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.len() > start
}

/// The canonical tags of `text`: sorted, unique, lowercase, without emphasis, weights or
/// `<lora:...>` tags (see the module docs for the exact rules).
pub fn tags(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut tags: Vec<String> = without_networks_and_weights(&lower)
        .split(',')
        .filter_map(|piece| {
            let mut tag = String::new();
            push_piece(piece, &mut tag).then_some(tag)
        })
        .collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// `text` with A1111 emphasis, weights and `<lora:...>` tags removed, keeping case, order and
/// repeats: the pieces between commas, trimmed and with whitespace collapsed, joined by `", "`.
/// This is the readable form a model trains on; [`tags`] is the form rows are compared by.
pub fn strip_weights(text: &str) -> String {
    let text = without_networks_and_weights(text);
    let mut out = String::with_capacity(text.len());
    for piece in text.split(',') {
        let before = out.len();
        if before > 0 {
            out.push_str(", ");
        }
        if !push_piece(piece, &mut out) {
            out.truncate(before);
        }
    }
    out
}

/// Jaccard similarity `|a ∩ b| / |a ∪ b|` of two tag sets, with `J(∅, ∅) = 1`.
///
/// Inputs as [`tags`] returns them (sorted, unique) take a linear merge; any other order or
/// repeats are accepted too and treated as the sets they denote.
pub fn jaccard<S: AsRef<str>>(a: &[S], b: &[S]) -> f64 {
    if is_sorted_set(a) && is_sorted_set(b) {
        sorted_jaccard_by(a, b, |s| s.as_ref())
    } else {
        let a: BTreeSet<&str> = a.iter().map(AsRef::as_ref).collect();
        let b: BTreeSet<&str> = b.iter().map(AsRef::as_ref).collect();
        let inter = a.intersection(&b).count();
        ratio(inter, a.len() + b.len() - inter)
    }
}

/// Near-duplicate similarity of two rows: `min(J(prompt tags), J(negative tags))`.
pub fn pair_similarity<S: AsRef<str>>(
    prompt_a: &[S],
    negative_a: &[S],
    prompt_b: &[S],
    negative_b: &[S],
) -> f64 {
    jaccard(prompt_a, prompt_b).min(jaccard(negative_a, negative_b))
}

/// A stable 64-bit identity of a row's canonical (prompt tags, negative tags) pair: equal pairs get
/// equal keys, so it is the exact-dedup key and the id of the row kept for it. xxh3 of the tags,
/// each followed by a unit separator, the fields split by a record separator (neither can occur
/// in a tag of normalised text). Two of a million distinct pairs collide with odds about 3·10⁻⁸.
pub fn pair_key<S: AsRef<str>>(prompt_tags: &[S], negative_tags: &[S]) -> i64 {
    let mut bytes = Vec::with_capacity(256);
    for tag in prompt_tags {
        bytes.extend_from_slice(tag.as_ref().as_bytes());
        bytes.push(0x1f);
    }
    bytes.push(0x1e);
    for tag in negative_tags {
        bytes.extend_from_slice(tag.as_ref().as_bytes());
        bytes.push(0x1f);
    }
    twox_hash::XxHash3_64::oneshot(&bytes) as i64
}

fn is_sorted_set<S: AsRef<str>>(tags: &[S]) -> bool {
    tags.windows(2).all(|w| w[0].as_ref() < w[1].as_ref())
}

/// Jaccard similarity of two strictly increasing sequences compared by `key`, with
/// `J(∅, ∅) = 1`: one linear merge. Tag lists and tag-hash lists both use it.
pub fn sorted_jaccard_by<T, K: Ord + ?Sized>(a: &[T], b: &[T], key: impl Fn(&T) -> &K) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match key(&a[i]).cmp(key(&b[j])) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    ratio(inter, a.len() + b.len() - inter)
}

fn ratio(inter: usize, union: usize) -> f64 {
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Number of runs of letters and digits: the "tokens" of curate's `max_tokens` filter and of the
/// SQL `token_count` (a model tokenizer gives about 1.3 tokens a word on English prompts).
pub fn word_count(text: &str) -> usize {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_emphasis_go() {
        assert_eq!(tags("((a:1.2):1.1), b"), ["a", "b"]);
        assert_eq!(tags("(big:-0.5), (small:.5)"), ["big", "small"]);
        assert_eq!(tags("(f/1.8:1.2), iso 100"), ["f/1.8", "iso 100"]);
    }

    #[test]
    fn number_not_before_a_bracket_stays() {
        assert_eq!(tags("ratio 16:9, v1.3"), ["ratio 16:9", "v1.3"]);
    }

    #[test]
    fn unclosed_angle_bracket_stays() {
        assert_eq!(tags("a < b, c"), ["a < b", "c"]);
    }

    #[test]
    fn strip_weights_keeps_case_order_and_repeats() {
        assert_eq!(
            strip_weights("(Masterpiece:1.2),  cat <lora:x:1>, ,cat, [[dog]]"),
            "Masterpiece, cat, cat, dog"
        );
        assert_eq!(strip_weights("<lora:only:1>"), "");
    }

    #[test]
    fn jaccard_of_sets() {
        let empty: [&str; 0] = [];
        assert_eq!(jaccard(&empty, &empty), 1.0);
        assert_eq!(jaccard(&["a"], &empty), 0.0);
        assert_eq!(jaccard(&["a", "b", "c"], &["b", "c", "d"]), 0.5);
        // Unsorted input with repeats means the same sets.
        assert_eq!(jaccard(&["c", "a", "a", "b"], &["d", "c", "b"]), 0.5);
    }

    #[test]
    fn pair_key_tells_fields_apart() {
        let k = pair_key(&["a", "b"], &["c"]);
        assert_eq!(k, pair_key(&tags("(B:1.2), a"), &tags("c")));
        assert_ne!(k, pair_key(&["a"], &["b", "c"]));
        assert_ne!(k, pair_key(&["a", "b", "c"], &[] as &[&str]));
        assert_ne!(pair_key(&["ab"], &["c"]), pair_key(&["a", "b"], &["c"]));
    }

    #[test]
    fn pair_similarity_takes_the_weaker_field() {
        let p = tags("a cat");
        let q = tags("a dog");
        let n = tags("n1, n2, n3, n4, n5, n6, n7, n8, n9, n10");
        assert_eq!(jaccard(&n, &n), 1.0);
        assert_eq!(pair_similarity(&p, &n, &q, &n), 0.0);
    }
}
