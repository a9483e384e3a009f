//! `token_count(text)`: how many tokens a text has, counted by the rule `etl curate`'s
//! `max_tokens` filter uses, so `token_count(x) <= max_tokens` holds for every kept row.
//!
//! Rule: tokens are maximal runs of letters and digits (Unicode alphanumerics); everything else
//! (spaces, punctuation, weights' `:` and `.`) separates them. Example:
//! `"(masterpiece:1.2), 1girl"` gives `masterpiece`, `1`, `2`, `1girl`: 4 tokens. A sub-word
//! tokenizer such as T5's gives more (about 1.3 a word on English prompts).

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{SECTION, map_arrays};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "Number of tokens: maximal runs of letters and digits, the rule of etl curate's \
         max_tokens filter (punctuation and spaces only separate). A sub-word tokenizer such as \
         T5's counts about 1.3 tokens a word.",
        "token_count(text)",
    )
    .with_sql_example("SELECT token_count('(masterpiece:1.2), 1girl');  -- 4")
    .with_argument("text", "Any text.")
    .build()
});

/// `token_count(text) -> int64`; NULL for NULL, 0 for empty text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TokenCountFunc {
    signature: Signature,
}

impl TokenCountFunc {
    /// The function, taking one string argument.
    pub fn new() -> Self {
        TokenCountFunc {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for TokenCountFunc {
    fn default() -> Self {
        Self::new()
    }
}

/// The number of tokens in `text` (see the module docs for the rule).
pub fn token_count(text: &str) -> i64 {
    negopt_etl::canon::word_count(text) as i64
}

impl ScalarUDFImpl for TokenCountFunc {
    fn name(&self) -> &str {
        "token_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = take_function_args(self.name(), &args.args)?;
        map_arrays(std::slice::from_ref(text), |arrays| {
            let out: Int64Array = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|t| t.map(token_count))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::query;
    use super::token_count;

    #[test]
    fn tokens_are_runs_of_letters_and_digits() {
        assert_eq!(token_count("(masterpiece:1.2), 1girl"), 4);
        assert_eq!(token_count("bad hands,  blurry"), 3);
        assert_eq!(token_count("don't"), 2);
        assert_eq!(token_count("日本語 テキスト"), 2);
        assert_eq!(token_count(" \t\n,.:"), 0);
    }

    #[test]
    fn token_count_in_sql_with_null_and_empty() {
        assert_eq!(
            query(
                "SELECT token_count(t) AS n FROM (VALUES ('(masterpiece:1.2), 1girl'), (''), (NULL)) AS v(t)"
            ),
            ["| 4 |", "| 0 |", "|   |"]
        );
    }
}
