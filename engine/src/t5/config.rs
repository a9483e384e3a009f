//! T5 configuration with Hugging Face `config.json` field names (`T5Config`), read with serde
//! defaults so a real flan-t5 `config.json` loads, and written back so `transformers` loads ours.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

fn d_kv() -> usize {
    64
}
fn buckets() -> usize {
    32
}
fn max_distance() -> usize {
    128
}
fn dropout() -> f32 {
    0.1
}
fn eps() -> f32 {
    1e-6
}
fn one() -> f32 {
    1.0
}
fn gated_gelu() -> String {
    "gated-gelu".into()
}
fn eos() -> u32 {
    1
}
fn model_type() -> String {
    "t5".into()
}
fn architectures() -> Vec<String> {
    vec!["T5ForConditionalGeneration".into()]
}

/// `T5Config` fields the engine uses (others in a `config.json` are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// V: vocabulary size (rows of `shared` and `lm_head`).
    pub vocab_size: usize,
    /// C: model width.
    pub d_model: usize,
    /// HS: width of one attention head.
    #[serde(default = "d_kv")]
    pub d_kv: usize,
    /// F: feed-forward width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Decoder blocks (defaults to `num_layers`).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// NH: attention heads.
    pub num_heads: usize,
    /// Relative-position buckets.
    #[serde(default = "buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which positions share the last bucket.
    #[serde(default = "max_distance")]
    pub relative_attention_max_distance: usize,
    /// Dropout probability in training.
    #[serde(default = "dropout")]
    pub dropout_rate: f32,
    /// RMSNorm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f32,
    /// Scale of the initialisation (HF `initializer_factor`).
    #[serde(default = "one")]
    pub initializer_factor: f32,
    /// Only `gated-gelu` (T5 v1.1) is supported.
    #[serde(default = "gated_gelu")]
    pub feed_forward_proj: String,
    /// Padding id, also the decoder start id in T5.
    #[serde(default)]
    pub pad_token_id: u32,
    /// End-of-sequence id.
    #[serde(default = "eos")]
    pub eos_token_id: u32,
    /// First decoder input.
    #[serde(default)]
    pub decoder_start_token_id: u32,
    /// Must be false: v1.1 has an untied `lm_head` and no output rescale.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Always `t5`.
    #[serde(default = "model_type")]
    pub model_type: String,
    /// Written for `transformers`' auto classes.
    #[serde(default = "architectures")]
    pub architectures: Vec<String>,
}

impl Config {
    /// The tiny built-in config for tests and the embedded demo (2+2 layers, width 64).
    pub fn tiny(vocab_size: usize) -> Config {
        Config {
            vocab_size,
            d_model: 64,
            d_kv: 16,
            d_ff: 128,
            num_layers: 2,
            num_decoder_layers: Some(2),
            num_heads: 4,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.1,
            layer_norm_epsilon: 1e-6,
            initializer_factor: 1.0,
            feed_forward_proj: gated_gelu(),
            pad_token_id: 0,
            eos_token_id: 1,
            decoder_start_token_id: 0,
            tie_word_embeddings: false,
            model_type: model_type(),
            architectures: architectures(),
        }
    }

    /// flan-t5-small's shape (random weights in benches; real ones load from safetensors).
    pub fn flan_t5_small() -> Config {
        Config {
            vocab_size: 32128,
            d_model: 512,
            d_kv: 64,
            d_ff: 1024,
            num_layers: 8,
            num_decoder_layers: Some(8),
            num_heads: 6,
            ..Config::tiny(32128)
        }
    }

    /// A built-in config by name (`tiny`, `flan-t5-small`).
    pub fn builtin(name: &str, vocab_size: usize) -> Result<Config> {
        match name {
            "tiny" => Ok(Config::tiny(vocab_size)),
            "flan-t5-small" => Ok(Config {
                vocab_size,
                ..Config::flan_t5_small()
            }),
            other => Err(EngineError::input(
                format!("model config `{other}`"),
                "unknown built-in config\nhelp: use tiny or flan-t5-small, or a config.json path",
            )),
        }
    }

    /// Decoder depth.
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// I = NH·HS, the attention inner width.
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// Reads and validates a `config.json`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| {
            EngineError::input(
                path.display().to_string(),
                format!("not a T5 config.json: {e}"),
            )
        })?;
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    /// Writes `config.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| crate::internal_err!("config to json: {e}"))?;
        std::fs::write(path, text).map_err(|e| EngineError::io(path, e))
    }

    /// Rejects configs the model cannot run, naming `source` and the field.
    pub fn validate(&self, source: &str) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(EngineError::input(format!("{source}: {field}"), problem))
        };
        if self.model_type != "t5" {
            return bad("model_type", format!("`{}` is not t5", self.model_type));
        }
        if self.feed_forward_proj != "gated-gelu" {
            return bad(
                "feed_forward_proj",
                format!(
                    "`{}` is not supported\nhelp: only the T5 v1.1 / flan-t5 `gated-gelu` layout runs here",
                    self.feed_forward_proj
                ),
            );
        }
        if self.tie_word_embeddings {
            return bad(
                "tie_word_embeddings",
                "true (T5 v1.0 layout) is not supported\nhelp: T5 v1.1 / flan-t5 checkpoints set it to false".into(),
            );
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_decoder_layers", self.decoder_layers()),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
            ),
        ] {
            if value == 0 {
                return bad(field, "must be positive".into());
            }
        }
        if self.relative_attention_num_buckets < 4 {
            return bad(
                "relative_attention_num_buckets",
                "must be at least 4".into(),
            );
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return bad(
                "dropout_rate",
                format!("{} is outside [0, 1)", self.dropout_rate),
            );
        }
        for (field, id) in [
            ("pad_token_id", self.pad_token_id),
            ("eos_token_id", self.eos_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id),
        ] {
            if id as usize >= self.vocab_size {
                return bad(
                    field,
                    format!("{id} is outside the vocabulary of {}", self.vocab_size),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_flan_t5_config_json() {
        // Abridged from google/flan-t5-small's config.json.
        let json = r#"{"architectures":["T5ForConditionalGeneration"],"d_ff":1024,"d_kv":64,
            "d_model":512,"decoder_start_token_id":0,"dense_act_fn":"gelu_new","dropout_rate":0.1,
            "eos_token_id":1,"feed_forward_proj":"gated-gelu","initializer_factor":1.0,
            "is_encoder_decoder":true,"is_gated_act":true,"layer_norm_epsilon":1e-06,
            "model_type":"t5","n_positions":512,"num_decoder_layers":8,"num_heads":6,
            "num_layers":8,"output_past":true,"pad_token_id":0,
            "relative_attention_max_distance":128,"relative_attention_num_buckets":32,
            "tie_word_embeddings":false,"use_cache":true,"vocab_size":32128}"#;
        let c: Config = serde_json::from_str(json).unwrap();
        c.validate("config.json").unwrap();
        assert_eq!(c, Config::flan_t5_small());
    }

    #[test]
    fn rejects_configs_the_model_cannot_run() {
        let mut c = Config::tiny(100);
        c.feed_forward_proj = "relu".into();
        let e = c.validate("x.json").unwrap_err().to_string();
        assert!(
            e.contains("x.json: feed_forward_proj") && e.contains("relu"),
            "{e}"
        );
        let mut c = Config::tiny(100);
        c.num_heads = 0;
        assert!(
            c.validate("x")
                .unwrap_err()
                .to_string()
                .contains("num_heads")
        );
        let mut c = Config::tiny(100);
        c.tie_word_embeddings = true;
        assert!(
            c.validate("x")
                .unwrap_err()
                .to_string()
                .contains("tie_word_embeddings")
        );
        let c = Config::tiny(1);
        assert!(
            c.validate("x")
                .unwrap_err()
                .to_string()
                .contains("eos_token_id")
        );
    }
}
