//! `tags(text)`: the canonical tag set of a prompt, as curate computes it for deduplication.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, AsArray, ListBuilder, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{SECTION, map_arrays, tag_list_type};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "The canonical tags of a prompt: lowercase, A1111 emphasis `( ) [ ] { }`, weights `:1.2` \
         and `<lora:...>` removed, split on commas, sorted and unique (negopt_etl::canon::tags, \
         the rule curate deduplicates by).",
        "tags(text)",
    )
    .with_sql_example(
        "SELECT tags('(Masterpiece:1.2), 1girl, <lora:x:0.6>');  -- [1girl, masterpiece]",
    )
    .with_argument("text", "Prompt or negative prompt text.")
    .build()
});

/// `tags(text) -> list<utf8>`; NULL for NULL, an empty list for text without tags.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TagsFunc {
    signature: Signature,
}

impl TagsFunc {
    /// The function, taking one string argument.
    pub fn new() -> Self {
        TagsFunc {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for TagsFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for TagsFunc {
    fn name(&self) -> &str {
        "tags"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(tag_list_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = take_function_args(self.name(), &args.args)?;
        map_arrays(std::slice::from_ref(text), |arrays| {
            let mut out = ListBuilder::new(StringBuilder::new());
            for text in arrays[0].as_string::<i32>() {
                match text {
                    Some(text) => {
                        for tag in negopt_etl::canon::tags(text) {
                            out.values().append_value(tag);
                        }
                        out.append(true);
                    }
                    None => out.append(false),
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
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
    fn tags_follow_the_canonical_rule_with_null_and_empty() {
        assert_eq!(
            query(
                "SELECT tags(t) AS t FROM (VALUES \
                 ('(Masterpiece:1.2), 1girl, <lora:x:0.6>'), (''), (' , ,'), (NULL)) AS v(t)"
            ),
            [
                "| [1girl, masterpiece] |",
                "| []                   |",
                "| []                   |",
                "|                      |"
            ]
        );
        assert_eq!(query("SELECT tags(NULL) IS NULL AS n"), ["| true |"]);
    }
}
