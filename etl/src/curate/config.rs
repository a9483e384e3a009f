//! The curate configuration: one TOML file, every key optional with the defaults documented here
//! (`etl curate --print-config` writes them out), unknown keys and impossible values refused.
//!
//! ```toml
//! [filter]
//! min_negative_chars = 3          # shorter negative prompts are dropped: short_negative
//! max_chars = 2000                # either field longer (characters): too_long_chars
//! max_tokens = 300                # either field with more words: too_many_tokens
//! min_letters = 3                 # either field with fewer letters (after URLs go): url_or_garbage
//! max_repeated_tag_share = 0.5    # share of repeated comma pieces in a field: spam_repetition
//! min_repetition_tags = 4         # ... judged only from this many pieces on
//! max_non_letter_share = 0.5      # share of non-letter, non-space characters: spam_symbols
//!
//! [filter.language]
//! allowed = ["eng"]               # ISO 639-3 codes (whatlang); empty list turns the filter off
//! method = "script"               # "script": writing system of each field, trigrams only for
//!                                 #   Latin text with non-ASCII letters; "trigrams": trigrams on
//!                                 #   all Latin text (≈40 µs a row, and ~0.5% of English tag
//!                                 #   lists misjudged); either way the reason is not_english
//! min_confidence = 0.9            # reject on trigrams only when whatlang is at least this sure
//! min_chars = 24                  # shorter texts are not judged by trigrams
//!
//! [filter.nsfw]
//! policy = "flag"                 # "flag" (adds flag nsfw) or "drop" (reason nsfw)
//! words = ["nsfw", "nude", ...]   # whole words or phrases matched in the normalised prompt
//! levels = ["mature", "x", "xxx", "4", "8", "16"]
//!                                 # raw_pairs.nsfw_level values (any case) that count as NSFW
//!                                 #   too: Civitai's words (None < Soft < Mature < X) and its
//!                                 #   numeric browsing levels (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX)
//!
//! [dedup]
//! level = "cluster"               # "cluster": keep one per near-duplicate cluster; "all": keep all
//! threshold = 0.8                 # min(J(prompt tags), J(negative tags)) for near duplicates
//! bands = 24                      # LSH bands
//! rows_per_band = 4               # MinHash values per field in a band (band = 2·r values)
//! max_bucket = 200                # larger LSH buckets: each row meets only its next 200 (by id)
//! seed = 0                        # MinHash seed
//!
//! [split]
//! train = 0.9
//! val = 0.05
//! test = 0.05
//! seed = 0                        # split hash seed
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CurateError;

/// Everything `etl curate` can be told; `Default` is the documented default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurateConfig {
    /// Stage 2: which rows are dropped and why.
    pub filter: FilterConfig,
    /// Stages 3 and 4: exact and near-duplicate removal.
    pub dedup: DedupConfig,
    /// Stage 5: the train / val / test split.
    pub split: SplitConfig,
}

/// Filter thresholds (stage 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Negative prompts with fewer characters (normal form) are dropped.
    pub min_negative_chars: usize,
    /// Prompts or negatives with more characters are dropped.
    pub max_chars: usize,
    /// Prompts or negatives with more words (runs of letters or digits) are dropped.
    pub max_tokens: usize,
    /// Prompts or negatives with fewer letters, once URLs are removed, are URL-only or garbage.
    pub min_letters: usize,
    /// Highest share of repeated comma-separated pieces in a field.
    pub max_repeated_tag_share: f64,
    /// Repetition is judged only for fields with at least this many pieces.
    pub min_repetition_tags: usize,
    /// Highest share of characters that are neither letters nor whitespace.
    pub max_non_letter_share: f64,
    /// Language identification.
    pub language: LanguageConfig,
    /// NSFW word list and policy.
    pub nsfw: NsfwConfig,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            min_negative_chars: 3,
            max_chars: 2000,
            max_tokens: 300,
            min_letters: 3,
            max_repeated_tag_share: 0.5,
            min_repetition_tags: 4,
            max_non_letter_share: 0.5,
            language: LanguageConfig::default(),
            nsfw: NsfwConfig::default(),
        }
    }
}

/// How the language filter decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LanguageMethod {
    /// Writing system of each field (fast, reliable); whatlang's trigram model only for Latin
    /// text with non-ASCII letters (accents are the sign of a non-English Latin language).
    Script,
    /// The writing system, then the trigram model on all Latin text (slow; unreliable on the
    /// comma-separated tag lists that most prompts are).
    Trigrams,
}

/// Language filter: whatlang on the prompt and negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageConfig {
    /// Accepted languages as ISO 639-3 codes; empty turns the filter off.
    pub allowed: Vec<String>,
    /// Script only, or script and trigrams.
    pub method: LanguageMethod,
    /// A row is rejected only when whatlang's confidence reaches this.
    pub min_confidence: f64,
    /// Texts shorter than this (characters) are not judged.
    pub min_chars: usize,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        Self {
            allowed: vec!["eng".into()],
            method: LanguageMethod::Script,
            min_confidence: 0.9,
            min_chars: 24,
        }
    }
}

/// What to do with rows whose prompt names an NSFW word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NsfwPolicy {
    /// Keep the row and add `nsfw` to its flags.
    Flag,
    /// Drop the row with reason `nsfw`.
    Drop,
}

/// NSFW policy and word list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NsfwConfig {
    /// Flag or drop.
    pub policy: NsfwPolicy,
    /// Lowercase words or phrases, matched on word boundaries in the normalised prompt. Negative
    /// prompts are not checked: "nsfw" there asks the model to avoid it.
    pub words: Vec<String>,
    /// Lowercase values of the source's own rating (`raw_pairs.nsfw_level`, compared ignoring
    /// case and surrounding spaces) that make a row NSFW whatever its words; empty ignores it.
    pub levels: Vec<String>,
}

impl Default for NsfwConfig {
    fn default() -> Self {
        let words = [
            "nsfw", "nude", "nudity", "naked", "topless", "nipples", "explicit", "porn", "hentai",
            "sex", "genitals", "pussy", "penis", "erotic",
        ];
        Self {
            policy: NsfwPolicy::Flag,
            words: words.map(String::from).to_vec(),
            levels: ["mature", "x", "xxx", "4", "8", "16"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// Which rows survive near-duplicate clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupLevel {
    /// Keep the representative of each cluster (most likes, then earliest).
    Cluster,
    /// Keep every row, with its cluster id and size.
    All,
}

/// Deduplication (stages 3 and 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Keep one per cluster or all.
    pub level: DedupLevel,
    /// Near-duplicate threshold on min(J(prompt tags), J(negative tags)), in (0, 1].
    pub threshold: f64,
    /// LSH bands.
    pub bands: usize,
    /// MinHash values of each field in one band.
    pub rows_per_band: usize,
    /// Buckets with more rows are compared within windows of this many neighbours (by id).
    pub max_bucket: usize,
    /// MinHash seed.
    pub seed: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            level: DedupLevel::Cluster,
            threshold: 0.8,
            bands: 24,
            rows_per_band: 4,
            max_bucket: 200,
            seed: 0,
        }
    }
}

/// Train / val / test ratios (stage 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SplitConfig {
    /// Share of clusters in train.
    pub train: f64,
    /// Share of clusters in val.
    pub val: f64,
    /// Share of clusters in test.
    pub test: f64,
    /// Seed of the cluster hash that picks the split.
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            train: 0.9,
            val: 0.05,
            test: 0.05,
            seed: 0,
        }
    }
}

impl CurateConfig {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, CurateError> {
        let text = std::fs::read_to_string(path).map_err(|source| CurateError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            CurateError::Config { message, .. } => CurateError::Config {
                origin: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, CurateError> {
        let config: Self = toml::from_str(text).map_err(|e| CurateError::Config {
            origin: "<toml>".into(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML, every key written out (what `--print-config` shows).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config of plain fields serialises")
    }

    /// SHA-256 of the TOML form, in hex: names the config in lineage.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.to_toml().as_bytes()))
    }

    /// Checks ranges and relations serde cannot.
    pub fn validate(&self) -> Result<(), CurateError> {
        let bad = |message: String| {
            Err(CurateError::Config {
                origin: "<config>".into(),
                message,
            })
        };
        let share = |name: &str, v: f64| -> Result<(), CurateError> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                bad(format!("{name} = {v} is outside [0, 1]"))
            }
        };
        let f = &self.filter;
        share("filter.max_repeated_tag_share", f.max_repeated_tag_share)?;
        share("filter.max_non_letter_share", f.max_non_letter_share)?;
        share("filter.language.min_confidence", f.language.min_confidence)?;
        if f.max_chars == 0 || f.max_tokens == 0 {
            return bad("filter.max_chars and filter.max_tokens must be positive".into());
        }
        for code in &f.language.allowed {
            if whatlang::Lang::from_code(code).is_none() {
                return bad(format!(
                    "filter.language.allowed: {code:?} is not an ISO 639-3 code whatlang knows\nhelp: English is \"eng\""
                ));
            }
        }
        for (key, list) in [("words", &f.nsfw.words), ("levels", &f.nsfw.levels)] {
            if let Some(w) = list
                .iter()
                .find(|w| w.trim() != w.as_str() || w.is_empty() || **w != w.to_lowercase())
            {
                return bad(format!(
                    "filter.nsfw.{key}: {w:?} must be non-empty, lowercase and trimmed"
                ));
            }
        }
        let d = &self.dedup;
        if !(d.threshold > 0.0 && d.threshold <= 1.0) {
            return bad(format!(
                "dedup.threshold = {} is outside (0, 1]",
                d.threshold
            ));
        }
        if d.bands == 0 || d.rows_per_band == 0 || d.bands * d.rows_per_band > 512 {
            return bad(format!(
                "dedup.bands = {} and dedup.rows_per_band = {} must be positive with a product of at most 512",
                d.bands, d.rows_per_band
            ));
        }
        if d.max_bucket < 2 {
            return bad(format!(
                "dedup.max_bucket = {} must be at least 2",
                d.max_bucket
            ));
        }
        let s = &self.split;
        for (name, v) in [
            ("split.train", s.train),
            ("split.val", s.val),
            ("split.test", s.test),
        ] {
            share(name, v)?;
        }
        let sum = s.train + s.val + s.test;
        if (sum - 1.0).abs() > 1e-9 {
            return bad(format!(
                "split ratios sum to {sum} (train {} + val {} + test {}), not 1",
                s.train, s.val, s.test
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(toml: &str) -> String {
        CurateConfig::from_toml(toml)
            .expect_err("config must be refused")
            .to_string()
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(
            CurateConfig::from_toml("").unwrap(),
            CurateConfig::default()
        );
    }

    #[test]
    fn printed_defaults_read_back_equal() {
        let config = CurateConfig::default();
        assert_eq!(CurateConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn partial_file_overrides_only_its_keys() {
        let c = CurateConfig::from_toml("[dedup]\nlevel = \"all\"\nthreshold = 0.9\n").unwrap();
        assert_eq!(c.dedup.level, DedupLevel::All);
        assert_eq!(c.dedup.threshold, 0.9);
        assert_eq!(c.dedup.bands, DedupConfig::default().bands);
        assert_eq!(c.split, SplitConfig::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(error_of("[dedup]\nthreshhold = 0.8\n").contains("threshhold"));
        assert!(error_of("[splits]\ntrain = 1.0\n").contains("splits"));
    }

    #[test]
    fn ratios_must_sum_to_one() {
        let e = error_of("[split]\ntrain = 0.8\nval = 0.1\ntest = 0.05\n");
        assert!(e.contains("sum to 0.95"), "{e}");
    }

    #[test]
    fn thresholds_out_of_range_are_refused() {
        assert!(error_of("[dedup]\nthreshold = 1.5\n").contains("dedup.threshold = 1.5"));
        assert!(error_of("[dedup]\nthreshold = 0.0\n").contains("dedup.threshold"));
        assert!(
            error_of("[filter]\nmax_non_letter_share = -0.1\n").contains("max_non_letter_share")
        );
        assert!(error_of("[filter.nsfw]\npolicy = \"hide\"\n").contains("hide"));
        assert!(error_of("[filter.nsfw]\nlevels = [\"X\"]\n").contains("filter.nsfw.levels"));
        assert!(error_of("[filter.language]\nallowed = [\"english\"]\n").contains("help: English"));
    }

    #[test]
    fn hash_changes_with_any_value() {
        let a = CurateConfig::default();
        let mut b = a.clone();
        b.split.seed = 1;
        assert_eq!(a.hash(), CurateConfig::default().hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
    }
}
