//! Synthetic `raw_pairs` with a known duplicate structure, for the curate tests and benchmark.
//!
//! Each *base* row gets a fresh prompt (4–12 "adjective noun" tags from ~22,000, half of them
//! behind the usual `masterpiece, best quality` boilerplate) and a negative (a shared boilerplate
//! list or 5–14 tags from a pool). Then:
//! - an *exact duplicate* copies a base row with cosmetic changes only (tag order, case, A1111
//!   weights and emphasis, a `<lora:...>` tag): same canonical tags, different item id and likes;
//! - a *near duplicate* adds one new tag to, or removes one from, the prompt or the negative of a
//!   base row, so `min(jp, jn) ≥ n/(n+1) ≥ 0.8` with the base (fields of at least 4 or 5 tags).
//!
//! Every row's `item_id` is `"{base}-{variant}"`, so tests recover the true cluster of a row.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use crate::crawl::output::PAIRS_SCHEMA;

const ADJECTIVES: &[&str] = &[
    "red",
    "blue",
    "green",
    "golden",
    "silver",
    "dark",
    "bright",
    "ancient",
    "modern",
    "quiet",
    "stormy",
    "sunny",
    "misty",
    "frozen",
    "burning",
    "gentle",
    "wild",
    "tiny",
    "giant",
    "lonely",
    "happy",
    "sad",
    "old",
    "young",
    "shiny",
    "rusty",
    "wooden",
    "glass",
    "stone",
    "iron",
    "velvet",
    "paper",
    "crystal",
    "broken",
    "hidden",
    "floating",
    "sleeping",
    "running",
    "dancing",
    "flying",
    "sleepy",
    "noisy",
    "calm",
    "rainy",
    "snowy",
    "dusty",
    "muddy",
    "sandy",
    "grassy",
    "rocky",
    "urban",
    "rural",
    "royal",
    "humble",
    "elegant",
    "rough",
    "smooth",
    "soft",
    "sharp",
    "round",
    "square",
    "curved",
    "tall",
    "short",
    "narrow",
    "wide",
    "deep",
    "shallow",
    "empty",
    "crowded",
    "secret",
    "famous",
    "strange",
    "magic",
    "cosmic",
    "tropical",
    "arctic",
    "desert",
    "forest",
    "ocean",
    "mountain",
    "river",
    "city",
    "village",
    "castle",
    "neon",
    "pastel",
    "vivid",
    "muted",
    "warm",
    "cold",
    "early",
    "late",
    "fresh",
    "faded",
    "painted",
    "carved",
    "woven",
    "knitted",
    "polished",
    "weathered",
    "glowing",
    "shadowy",
];

const NOUNS: &[&str] = &[
    "cat",
    "dog",
    "fox",
    "owl",
    "horse",
    "dragon",
    "knight",
    "wizard",
    "sailor",
    "farmer",
    "robot",
    "castle",
    "tower",
    "bridge",
    "garden",
    "forest",
    "lake",
    "river",
    "mountain",
    "valley",
    "island",
    "harbor",
    "market",
    "street",
    "alley",
    "library",
    "kitchen",
    "bedroom",
    "window",
    "door",
    "lamp",
    "candle",
    "book",
    "letter",
    "map",
    "clock",
    "mirror",
    "teapot",
    "bicycle",
    "train",
    "ship",
    "balloon",
    "kite",
    "umbrella",
    "hat",
    "coat",
    "dress",
    "boots",
    "flower",
    "rose",
    "tulip",
    "tree",
    "oak",
    "pine",
    "cactus",
    "mushroom",
    "apple",
    "pear",
    "cake",
    "bread",
    "cheese",
    "coffee",
    "tea",
    "moon",
    "sun",
    "star",
    "cloud",
    "rain",
    "snow",
    "storm",
    "sky",
    "sea",
    "wave",
    "beach",
    "cliff",
    "cave",
    "temple",
    "church",
    "house",
    "cottage",
    "barn",
    "fence",
    "road",
    "car",
    "truck",
    "boat",
    "guitar",
    "piano",
    "violin",
    "drum",
    "statue",
    "fountain",
    "painting",
    "portrait",
    "landscape",
    "city",
    "village",
    "crowd",
    "child",
    "woman",
    "man",
    "girl",
    "boy",
];

const QUALITY: &[&str] = &["masterpiece", "best quality"];

const NEGATIVE_POOL: &[&str] = &[
    "lowres",
    "blurry",
    "watermark",
    "text",
    "signature",
    "jpeg artifacts",
    "bad anatomy",
    "bad hands",
    "extra fingers",
    "missing fingers",
    "cropped",
    "worst quality",
    "low quality",
    "normal quality",
    "username",
    "error",
    "out of frame",
    "deformed",
    "disfigured",
    "mutated",
    "ugly",
    "duplicate",
    "morbid",
    "mutilated",
    "poorly drawn face",
    "poorly drawn hands",
    "extra limbs",
    "cloned face",
    "gross proportions",
    "malformed limbs",
    "missing arms",
    "missing legs",
    "extra arms",
    "extra legs",
    "fused fingers",
    "too many fingers",
    "long neck",
    "grainy",
    "noisy",
    "overexposed",
    "underexposed",
    "oversaturated",
    "low contrast",
    "pixelated",
    "banding",
    "chromatic aberration",
    "motion blur",
    "out of focus",
    "tiling",
    "frame",
    "border",
    "logo",
    "easynegative",
    "badhandv4",
    "verybadimagenegative_v1.3",
    "bad proportions",
    "asymmetry",
    "dull colors",
    "flat lighting",
    "harsh shadows",
    "cartoon",
    "3d render",
    "sketch",
    "monochrome",
    "grayscale",
    "draft",
];

/// Shared boilerplate negatives, as people paste them.
fn boilerplate(i: usize) -> Vec<String> {
    let start = (i * 13) % (NEGATIVE_POOL.len() - 16);
    NEGATIVE_POOL[start..start + 12 + i % 4]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The `raw_pairs` schema: the crawl's own ([`crate::crawl::output::PAIRS_SCHEMA`]).
pub fn raw_pairs_schema() -> SchemaRef {
    Arc::clone(&PAIRS_SCHEMA)
}

/// One raw pair to build a batch from; the other columns get fixed plausible values.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// Source name.
    pub source: String,
    /// Item id within the source.
    pub item_id: String,
    /// Prompt text.
    pub prompt: String,
    /// Negative prompt text (None = missing).
    pub negative_prompt: Option<String>,
    /// Likes.
    pub likes: i64,
    /// Creation time, microseconds since the epoch.
    pub created_at_us: i64,
}

impl RawRow {
    /// A row of `source` with the given texts, 0 likes, created at the epoch.
    pub fn new(source: &str, item_id: &str, prompt: &str, negative: &str) -> Self {
        Self {
            source: source.into(),
            item_id: item_id.into(),
            prompt: prompt.into(),
            negative_prompt: Some(negative.into()),
            likes: 0,
            created_at_us: 0,
        }
    }
}

/// One batch of [`raw_pairs_schema`] holding `rows`.
pub fn raw_batch(rows: &[RawRow]) -> RecordBatch {
    let n = rows.len();
    let strings = |f: &dyn Fn(&RawRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let ts = |v: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(r.source.clone())),
        strings(&|r| Some(r.item_id.clone())),
        strings(&|r| {
            Some(format!(
                "https://example.invalid/{}/{}",
                r.source, r.item_id
            ))
        }),
        strings(&|r| Some(r.prompt.clone())),
        strings(&|r| r.negative_prompt.clone()),
        strings(&|_| Some("sd15".into())),
        strings(&|_| Some("Euler a".into())),
        Arc::new(Int64Array::from(vec![30; n])),
        Arc::new(Float64Array::from(vec![7.0; n])),
        Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(vec![512; n])),
        Arc::new(Int32Array::from(vec![512; n])),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.likes).collect::<Vec<_>>(),
        )),
        ts(rows.iter().map(|r| r.created_at_us).collect()),
        strings(&|_| Some("None".into())),
        ts(vec![1_764_374_400_000_000; n]),
        strings(&|_| Some("0".repeat(64))),
    ];
    RecordBatch::try_new(raw_pairs_schema(), columns).expect("columns match raw_pairs_schema")
}

/// Shares of the generated rows.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Share of rows that are exact duplicates (cosmetic copies) of a base row.
    pub exact: f64,
    /// Share of rows that are near duplicates of a base row.
    pub near: f64,
}

/// A row of the generated set with its true cluster (the base row it comes from).
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The row.
    pub row: RawRow,
    /// Index of its base row.
    pub base: usize,
}

fn tag_set(rng: &mut StdRng, n: usize) -> Vec<String> {
    let mut tags: Vec<String> = Vec::with_capacity(n);
    while tags.len() < n {
        let t = format!(
            "{} {}",
            ADJECTIVES.choose(rng).unwrap(),
            NOUNS.choose(rng).unwrap()
        );
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

/// A copy of `tags` as a person might retype it: shuffled, some weighted or in brackets, some
/// upper case, maybe a LoRA tag. Canonically equal to `tags`.
fn cosmetic(rng: &mut StdRng, tags: &[String]) -> String {
    let mut pieces: Vec<String> = tags
        .iter()
        .map(|t| match rng.random_range(0..6) {
            0 => format!("({t}:1.{})", rng.random_range(1..5)),
            1 => format!("(({t}))"),
            2 => format!("[{t}]"),
            3 => t.to_uppercase(),
            _ => t.clone(),
        })
        .collect();
    pieces.shuffle(rng);
    if rng.random_bool(0.3) {
        pieces.push(format!("<lora:style_{}:0.7>", rng.random_range(0..50)));
    }
    pieces.join(", ")
}

/// One tag added (or, for fields of 5 or more, one removed): J with the original ≥ 0.8.
fn nudge(rng: &mut StdRng, tags: &[String]) -> Vec<String> {
    let mut out = tags.to_vec();
    if out.len() >= 5 && rng.random_bool(0.5) {
        out.remove(rng.random_range(0..out.len()));
    } else {
        loop {
            let extra = tag_set(rng, 1).remove(0);
            if !out.contains(&extra) {
                out.push(extra);
                break;
            }
        }
    }
    out
}

/// `n` labelled rows from `seed`: `mix.exact · n` exact and `mix.near · n` near duplicates of
/// `(1 − mix.exact − mix.near) · n` base rows, in shuffled order, over `sources` sources.
pub fn generate(n: usize, mix: Mix, sources: usize, seed: u64) -> Vec<Labelled> {
    let mut rng = StdRng::seed_from_u64(seed);
    let bases = ((1.0 - mix.exact - mix.near) * n as f64).round().max(1.0) as usize;
    let mut fields: Vec<(Vec<String>, Vec<String>)> = Vec::with_capacity(bases);
    let mut out: Vec<Labelled> = Vec::with_capacity(n);
    let mut variants = vec![0usize; bases];
    let mut push =
        |rng: &mut StdRng, base: usize, variant: usize, prompt: String, negative: String| {
            out.push(Labelled {
                row: RawRow {
                    source: format!("source{}", base % sources.max(1)),
                    item_id: format!("{base}-{variant}"),
                    prompt,
                    negative_prompt: Some(negative),
                    likes: rng.random_range(1..1000),
                    created_at_us: 1_700_000_000_000_000 + rng.random_range(0..30_000_000_000_000),
                },
                base,
            });
        };
    for base in 0..bases {
        let len = rng.random_range(4..13);
        let mut prompt = tag_set(&mut rng, len);
        if rng.random_bool(0.5) {
            prompt.extend(QUALITY.iter().map(|s| s.to_string()));
        }
        let negative = if rng.random_bool(0.4) {
            boilerplate(rng.random_range(0..3))
        } else {
            let k = rng.random_range(5..15);
            NEGATIVE_POOL
                .choose_multiple(&mut rng, k)
                .map(|s| s.to_string())
                .collect()
        };
        push(&mut rng, base, 0, prompt.join(", "), negative.join(", "));
        fields.push((prompt, negative));
    }
    let exact = (mix.exact * n as f64).round() as usize;
    let near = n.saturating_sub(bases + exact);
    for i in 0..exact + near {
        let base = rng.random_range(0..bases);
        variants[base] += 1;
        let (p, q) = &fields[base];
        let (prompt, negative) = if i < exact {
            (cosmetic(&mut rng, p), cosmetic(&mut rng, q))
        } else if rng.random_bool(0.5) {
            (nudge(&mut rng, p).join(", "), q.join(", "))
        } else {
            (p.join(", "), nudge(&mut rng, q).join(", "))
        };
        push(&mut rng, base, variants[base], prompt, negative);
    }
    out.shuffle(&mut rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon;

    #[test]
    fn variants_have_their_promised_similarity() {
        let rows = generate(
            2000,
            Mix {
                exact: 0.3,
                near: 0.1,
            },
            2,
            1,
        );
        assert_eq!(rows.len(), 2000);
        let mut by_base: std::collections::HashMap<usize, Vec<&Labelled>> = Default::default();
        rows.iter()
            .for_each(|r| by_base.entry(r.base).or_default().push(r));
        let tags = |r: &RawRow| {
            (
                canon::tags(&r.prompt),
                canon::tags(r.negative_prompt.as_deref().unwrap()),
            )
        };
        for members in by_base.values() {
            let base = members
                .iter()
                .find(|r| r.row.item_id.ends_with("-0"))
                .expect("base row present");
            let (bp, bn) = tags(&base.row);
            for m in members {
                let (p, n) = tags(&m.row);
                let sim = canon::pair_similarity(&bp, &bn, &p, &n);
                assert!(sim >= 0.8, "{} vs its base: {sim}", m.row.item_id);
            }
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let a = generate(
            300,
            Mix {
                exact: 0.3,
                near: 0.1,
            },
            3,
            5,
        );
        let b = generate(
            300,
            Mix {
                exact: 0.3,
                near: 0.1,
            },
            3,
            5,
        );
        assert!(a.iter().zip(&b).all(|(x, y)| x.row == y.row));
        assert_eq!(
            raw_batch(&a.iter().map(|l| l.row.clone()).collect::<Vec<_>>()).num_rows(),
            300
        );
    }
}
