//! Stage 1: the normal form of a prompt, kept beside the original text.
//!
//! ```text
//! HTML-unescape (&amp; &quot; &#39; &nbsp;) → Unicode NFKC (ｆｕｌｌ → full, ﬁ → fi)
//!   → drop control and invisible characters (U+0000–U+001F, U+007F–U+009F, zero-width, BOM,
//!     soft hyphen; whitespace controls become spaces) → collapse whitespace runs to one space, trim
//! ```
//! Unescaping comes first so `&nbsp;` and `&#65313;` reach NFKC as the characters they name.
//! The canonical tags used for comparison ([`crate::canon::tags`]) are computed from this form.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// The normal form of `text` (see the module docs), borrowed when `text` already is one.
pub fn normalise(text: &str) -> Cow<'_, str> {
    if is_plain_normal(text) {
        return Cow::Borrowed(text);
    }
    let unescaped = html_escape::decode_html_entities(text);
    // ASCII text (most prompts) is already in NFKC.
    let nfkc: Cow<'_, str> = if unescaped.is_ascii() {
        unescaped
    } else {
        match is_nfkc_quick(unescaped.chars()) {
            IsNormalized::Yes => unescaped,
            _ => Cow::Owned(unescaped.nfkc().collect()),
        }
    };
    let mut out = String::with_capacity(nfkc.len());
    let mut pending_space = false;
    for c in nfkc.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` is printable ASCII without `&`, single-spaced and trimmed: the common case,
/// which every step leaves unchanged (no entity, already NFKC, no control or run of spaces).
fn is_plain_normal(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    let mut previous_space = false;
    bytes.iter().all(|&b| {
        let space = b == b' ';
        let ok = if space {
            !previous_space
        } else {
            (0x21..0x7f).contains(&b) && b != b'&'
        };
        previous_space = space;
        ok
    })
}

/// Control characters (Unicode Cc) and the format characters that render as nothing.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
        )
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn html_entities_are_unescaped() {
        assert_eq!(
            normalise("cats &amp; dogs, &quot;hi&quot;, it&#39;s"),
            "cats & dogs, \"hi\", it's"
        );
        assert_eq!(normalise("a&lt;lora:x:1&gt;"), "a<lora:x:1>");
    }

    #[test]
    fn nfkc_folds_compatibility_forms() {
        assert_eq!(normalise("ｆｕｌｌ ｗｉｄｔｈ"), "full width");
        assert_eq!(normalise("ﬁne ① ²"), "fine 1 2");
        // Decomposed é (e + U+0301) composes to the single code point.
        assert_eq!(normalise("cafe\u{301}"), "café");
    }

    #[test]
    fn nbsp_entity_becomes_an_ordinary_space() {
        assert_eq!(normalise("a&nbsp;&nbsp;b"), "a b");
    }

    #[test]
    fn controls_and_invisibles_are_dropped() {
        assert_eq!(
            normalise("low\u{0}res\u{7}, blu\u{200B}rry\u{FEFF}, so\u{AD}ft"),
            "lowres, blurry, soft"
        );
    }

    #[test]
    fn whitespace_collapses_and_trims() {
        assert_eq!(normalise("  lowres,\n\n\tblurry \r\n"), "lowres, blurry");
        assert_eq!(normalise(" \t\n "), "");
    }

    #[test]
    fn plain_text_is_borrowed_and_anything_else_is_not() {
        use std::borrow::Cow;
        assert!(matches!(normalise("lowres, blurry"), Cow::Borrowed(_)));
        for text in ["a  b", " a", "a ", "a\tb", "a &amp; b", "café", "a\u{7f}"] {
            assert!(matches!(normalise(text), Cow::Owned(_)), "{text:?}");
        }
    }

    #[test]
    fn normal_form_is_idempotent() {
        for text in [
            "a &amp; b",
            "ｆｕｌｌ",
            "  x\u{0} y ",
            "(cat:1.2), <lora:a:1>",
        ] {
            let once = normalise(text);
            assert_eq!(normalise(&once), once, "{text:?}");
        }
    }
}
