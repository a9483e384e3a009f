//! Text ↔ token ids through the `tokenizers` crate. A Hugging Face `tokenizer.json` loads as
//! is (T5's SentencePiece unigram included); for the embedded default a unigram model is
//! trained offline on the catalog's train split (`engine tokenizer train`) and saved beside
//! the checkpoint. Ids follow T5: `<pad>` 0, `</s>` 1, `<unk>` 2; every encoded sequence ends
//! with `</s>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizedString, Normalizer, OffsetReferential, OffsetType,
    PreTokenizedString, PreTokenizer, PreTokenizerWrapper,
};

use crate::error::{EngineError, Result};

/// The special tokens, in id order.
pub const SPECIALS: [&str; 3] = ["<pad>", "</s>", "<unk>"];

/// A loaded tokenizer and the ids the model needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    source: PathBuf,
    /// `</s>`
    pub eos_id: u32,
    /// `<pad>`
    pub pad_id: u32,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab", &self.vocab_size())
            .finish()
    }
}

fn tok_err(what: impl Into<String>) -> impl FnOnce(tokenizers::Error) -> EngineError {
    let what = what.into();
    move |e| EngineError::Tokenizer {
        what,
        message: e.to_string(),
    }
}

/// Makes the scores of the trainer's fallback characters independent of hash order.
///
/// `UnigramTrainer::finalize` (tokenizers 0.23, `models/unigram/trainer.rs`) gives every
/// character the text needs but EM pruned the score `min + k·1e-4`, k = 0, 1, … in the order
/// of a randomly keyed hash set. Those characters are found by their scores (replaying that
/// accumulation bit for bit) and the same scores are handed out again in character order.
fn canonical_fallback_chars(pieces: &mut [(String, f64)]) {
    const PENALTY_STEP: f64 = 0.0001;
    let Some(min) = pieces.iter().map(|p| p.1).min_by(f64::total_cmp) else {
        return;
    };
    let mut levels = Vec::with_capacity(pieces.len());
    let mut penalty = 0.0;
    for _ in 0..pieces.len() {
        levels.push(min + penalty);
        penalty += PENALTY_STEP;
    }
    let is_level = |s: f64| {
        let k = ((s - min) / PENALTY_STEP).round();
        k >= 0.0 && levels.get(k as usize) == Some(&s)
    };
    let fallback: Vec<usize> = (0..pieces.len())
        .filter(|&i| pieces[i].0.chars().count() == 1 && is_level(pieces[i].1))
        .collect();
    let mut chars: Vec<String> = fallback.iter().map(|&i| pieces[i].0.clone()).collect();
    let mut scores: Vec<f64> = fallback.iter().map(|&i| pieces[i].1).collect();
    chars.sort();
    scores.sort_by(f64::total_cmp);
    for (&i, piece) in fallback.iter().zip(chars.into_iter().zip(scores)) {
        pieces[i] = piece;
    }
}

impl Tokenizer {
    fn from_inner(inner: tokenizers::Tokenizer, source: PathBuf) -> Result<Tokenizer> {
        let id = |t: &str| {
            inner.token_to_id(t).ok_or_else(|| EngineError::Tokenizer {
                what: source.display().to_string(),
                message: format!(
                    "has no `{t}` token\nhelp: T5 tokenizers define <pad>, </s> and <unk>"
                ),
            })
        };
        let (pad_id, eos_id) = (id("<pad>")?, id("</s>")?);
        Ok(Tokenizer {
            inner,
            source,
            eos_id,
            pad_id,
        })
    }

    /// Loads a `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Tokenizer> {
        if !path.is_file() {
            return Err(EngineError::input(
                path.display().to_string(),
                "no such tokenizer file",
            ));
        }
        let inner =
            tokenizers::Tokenizer::from_file(path).map_err(tok_err(path.display().to_string()))?;
        Tokenizer::from_inner(inner, path.to_path_buf())
    }

    /// Trains a unigram tokenizer of `vocab_size` pieces on `texts` (NFKC, metaspace words).
    ///
    /// Bit-reproducible: the same texts (in any order, with any thread count) give the same
    /// `tokenizer.json`. The `tokenizers` trainer alone is not: it walks hash maps with
    /// per-process random keys and sums its E-step per thread. So words are counted here into a
    /// sorted map, the EM runs on them on one thread, and the trained pieces get canonical
    /// scores and ids (score descending, ties by piece).
    pub fn train(
        texts: impl Iterator<Item = impl AsRef<str>>,
        vocab_size: usize,
    ) -> Result<Tokenizer> {
        let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
        let mut words: BTreeMap<String, u32> = BTreeMap::new();
        for text in texts {
            let mut normalized = NormalizedString::from(text.as_ref());
            NFKC.normalize(&mut normalized)
                .map_err(tok_err("normalizing training text"))?;
            let mut words_of = PreTokenizedString::from(normalized);
            metaspace
                .pre_tokenize(&mut words_of)
                .map_err(tok_err("splitting training text"))?;
            for (word, _, _) in words_of.get_splits(OffsetReferential::Original, OffsetType::Byte) {
                *words.entry(word.to_owned()).or_default() += 1;
            }
        }
        let trainer = UnigramTrainer::builder()
            .show_progress(false)
            .vocab_size(vocab_size as u32)
            .special_tokens(
                SPECIALS
                    .iter()
                    .map(|s| AddedToken::from(*s, true))
                    .collect(),
            )
            .unk_token(Some("<unk>".into()))
            .build()
            .map_err(|e| crate::internal_err!("unigram trainer: {e}"))?;
        // One thread: the trainer cuts its E-step into `current_num_threads()` chunks and sums
        // their floats, so another thread count would give other scores.
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| crate::internal_err!("tokenizer training thread pool: {e}"))?;
        let mut trained = Unigram::default();
        let specials = one_thread
            .install(|| trainer.do_train(words.into_iter().collect(), &mut trained))
            .map_err(tok_err(format!("training (vocab {vocab_size})")))?;
        let mut pieces: Vec<(String, f64)> = trained.iter().map(|(p, s)| (p.clone(), *s)).collect();
        if pieces.len() < SPECIALS.len() || pieces.iter().zip(SPECIALS).any(|((p, _), s)| p != s) {
            return Err(crate::internal_err!(
                "the unigram trainer did not put {SPECIALS:?} first"
            ));
        }
        let learned = &mut pieces[SPECIALS.len()..];
        canonical_fallback_chars(learned);
        learned.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let unk = SPECIALS.iter().position(|s| *s == "<unk>");
        let model = Unigram::from(pieces, unk, trained.byte_fallback())
            .map_err(tok_err("building the trained model"))?;
        let mut inner = tokenizers::Tokenizer::new(model);
        inner
            .with_normalizer(Some(NormalizerWrapper::from(NFKC)))
            .map_err(tok_err("normalizer"))?;
        inner.with_pre_tokenizer(Some(PreTokenizerWrapper::from(metaspace.clone())));
        inner.with_decoder(Some(DecoderWrapper::from(metaspace)));
        let _ = inner.add_special_tokens(specials);
        Tokenizer::from_inner(inner, PathBuf::from("<trained>"))
    }

    /// Writes `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        }
        self.inner
            .save(path, false)
            .map_err(tok_err(path.display().to_string()))
    }

    /// Vocabulary size including special tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text` followed by `</s>`, at most `max_len` ids (the `</s>` is kept).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(tok_err("encode"))?;
        let mut ids: Vec<u32> = enc
            .get_ids()
            .iter()
            .copied()
            .take(max_len.saturating_sub(1))
            .collect();
        ids.push(self.eos_id);
        Ok(ids)
    }

    /// Text of `ids`, stopping at `</s>` and skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let end = ids
            .iter()
            .position(|&i| i == self.eos_id)
            .unwrap_or(ids.len());
        self.inner
            .decode(&ids[..end], true)
            .map_err(tok_err("decode"))
    }

    /// Checks that a model with `vocab_size` rows can embed every id of this tokenizer.
    pub fn check_model_vocab(&self, vocab_size: usize) -> Result<()> {
        if self.vocab_size() > vocab_size {
            return Err(EngineError::input(
                self.source.display().to_string(),
                format!(
                    "tokenizer has {} tokens but the model's vocab_size is {vocab_size}\nhelp: use the tokenizer.json saved with the checkpoint",
                    self.vocab_size()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Varied texts: many rare characters and words with tied counts, where hash-map order
    /// and the thread count used to leak into piece ids and scores.
    fn corpus() -> Vec<String> {
        (0..300)
            .map(|i| {
                let rare = char::from_u32(0x3b1 + (i % 23)).unwrap();
                format!(
                    "{rare}word{} and tag{}, blurry{rare}, x{}y",
                    i % 17,
                    i % 29,
                    i % 11
                )
            })
            .collect()
    }

    #[test]
    fn training_is_bit_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        // Runs alternate between 1 and 3 threads, and feed the texts in another order.
        let json = |n: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1 + 2 * (n % 2))
                .build()
                .unwrap();
            let mut texts = corpus();
            texts.rotate_left(n * 37);
            let tok = pool
                .install(|| Tokenizer::train(texts.into_iter(), 150))
                .unwrap();
            let path = dir.path().join(format!("t{n}.json"));
            tok.save(&path).unwrap();
            std::fs::read(&path).unwrap()
        };
        let first = json(0);
        for n in 1..4 {
            assert!(
                first == json(n),
                "training run {n} wrote a different tokenizer.json"
            );
        }
    }

    #[test]
    fn trains_round_trips_saves_and_checks_vocab() {
        let texts: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "blurry, lowres, bad anatomy, watermark {}, jpeg artifacts, red circle on blue",
                    i % 7
                )
            })
            .collect();
        let tok = Tokenizer::train(texts.iter().map(String::as_str), 120).unwrap();
        assert_eq!((tok.pad_id, tok.eos_id), (0, 1));
        let ids = tok.encode("blurry, lowres, watermark", 64).unwrap();
        assert_eq!(*ids.last().unwrap(), 1);
        assert_eq!(tok.decode(&ids).unwrap(), "blurry, lowres, watermark");
        assert_eq!(tok.encode("blurry, lowres, watermark", 3).unwrap().len(), 3);
        let dir = tempfile::tempdir().unwrap();
        tok.save(&dir.path().join("tokenizer.json")).unwrap();
        let back = Tokenizer::load(&dir.path().join("tokenizer.json")).unwrap();
        assert_eq!(
            back.encode("bad anatomy", 64).unwrap(),
            tok.encode("bad anatomy", 64).unwrap()
        );
        let err = back.check_model_vocab(10).unwrap_err().to_string();
        assert!(err.contains("vocab_size is 10"), "{err}");
        assert!(Tokenizer::load(&dir.path().join("nope.json")).is_err());
    }
}
