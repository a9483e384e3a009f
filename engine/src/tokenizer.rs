//! Text ↔ token ids through the `tokenizers` crate. A Hugging Face `tokenizer.json` loads as
//! is (T5's SentencePiece unigram included); for the embedded default a unigram model is
//! trained offline on the catalog's train split (`engine tokenizer train`) and saved beside
//! the checkpoint. Ids follow T5: `<pad>` 0, `</s>` 1, `<unk>` 2; every encoded sequence ends
//! with `</s>`.

use std::path::{Path, PathBuf};

use tokenizers::models::TrainerWrapper;
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper};

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
    pub fn train(
        texts: impl Iterator<Item = impl AsRef<str> + Send> + Send,
        vocab_size: usize,
    ) -> Result<Tokenizer> {
        let mut inner = tokenizers::Tokenizer::new(Unigram::default());
        let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
        inner
            .with_normalizer(Some(NormalizerWrapper::from(NFKC)))
            .map_err(tok_err("normalizer"))?;
        inner.with_pre_tokenizer(Some(PreTokenizerWrapper::from(metaspace.clone())));
        inner.with_decoder(Some(DecoderWrapper::from(metaspace)));
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
        let mut trainer = TrainerWrapper::from(trainer);
        inner
            .train(&mut trainer, texts)
            .map_err(tok_err(format!("training (vocab {vocab_size})")))?;
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
