//! `strip_weights(text)`: a prompt without A1111 emphasis, weights and extra-network tags, in its
//! own order and case (the readable form a model trains on).

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, AsArray, StringArray};
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
        "The text with A1111 emphasis `( ) [ ] { }`, weights `:1.2` and `<lora:...>` tags removed, \
         keeping case, order and repeats; pieces joined by \", \" (negopt_etl::canon::strip_weights).",
        "strip_weights(text)",
    )
    .with_sql_example("SELECT strip_weights('((cat:1.3)), [dog]');  -- cat, dog")
    .with_argument("text", "Prompt or negative prompt text.")
    .build()
});

/// `strip_weights(text) -> utf8`; NULL for NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StripWeightsFunc {
    signature: Signature,
}

impl StripWeightsFunc {
    /// The function, taking one string argument.
    pub fn new() -> Self {
        StripWeightsFunc {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for StripWeightsFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for StripWeightsFunc {
    fn name(&self) -> &str {
        "strip_weights"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = take_function_args(self.name(), &args.args)?;
        map_arrays(std::slice::from_ref(text), |arrays| {
            let out: StringArray = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|text| text.map(negopt_etl::canon::strip_weights))
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

    #[test]
    fn strip_weights_keeps_order_and_case_with_null_and_empty() {
        assert_eq!(
            query(
                "SELECT '<' || strip_weights(t) || '>' AS s FROM (VALUES \
                 ('((Cat:1.3)), [dog], <lora:x:0.5> cat'), (''), (NULL)) AS v(t)"
            ),
            [
                "| <Cat, dog, cat> |",
                "| <>              |",
                "|                 |"
            ]
        );
    }
}
