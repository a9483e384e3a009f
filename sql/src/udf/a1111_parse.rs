//! `a1111_parse(text)`: an Automatic1111 "parameters" text split into prompt, negative prompt and
//! parameters, exactly as A1111 reads it back (`negopt_etl::sources::a1111::parse`).

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, MapBuilder, StringArray, StringBuilder, StructArray};
use arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{SECTION, map_arrays};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "Splits Automatic1111 \"parameters\" text (PNG tEXt / EXIF) into a struct {prompt, \
         negative_prompt, params}, params a map from A1111's keys (Steps, Sampler, CFG scale, \
         Seed, Size, Model, ...) to their text values. The last line counts as parameters only \
         when it holds at least 3 `key: value` pairs, as in A1111.",
        "a1111_parse(text)",
    )
    .with_sql_example(
        "SELECT a1111_parse(t)['negative_prompt'], a1111_parse(t)['params']['Steps'] FROM ...;\n\
         SELECT a1111_parse('a fox\\nSteps: 20, Sampler: Euler a, CFG scale: 7.5');\n\
         -- {prompt: a fox, negative_prompt: , params: {Steps: 20, Sampler: Euler a, CFG scale: 7.5}}",
    )
    .with_argument("text", "A1111 parameters text.")
    .build()
});

/// `a1111_parse(text) -> struct<prompt, negative_prompt, params: map<utf8, utf8>>`; NULL for NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct A1111ParseFunc {
    signature: Signature,
}

impl A1111ParseFunc {
    /// The function, taking one string argument.
    pub fn new() -> Self {
        A1111ParseFunc {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for A1111ParseFunc {
    fn default() -> Self {
        Self::new()
    }
}

fn params_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

/// The struct's fields; the map's type is taken from the builder so the two always agree.
fn fields() -> Fields {
    let params_type = params_builder().finish().data_type().clone();
    Fields::from(vec![
        Field::new("prompt", DataType::Utf8, true),
        Field::new("negative_prompt", DataType::Utf8, true),
        Field::new("params", params_type, true),
    ])
}

impl ScalarUDFImpl for A1111ParseFunc {
    fn name(&self) -> &str {
        "a1111_parse"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = take_function_args(self.name(), &args.args)?;
        map_arrays(std::slice::from_ref(text), |arrays| {
            let texts = arrays[0].as_string::<i32>();
            let mut prompts = Vec::with_capacity(texts.len());
            let mut negatives = Vec::with_capacity(texts.len());
            let mut params = params_builder();
            for text in texts {
                match text.map(negopt_etl::sources::a1111::parse) {
                    Some(parsed) => {
                        prompts.push(Some(parsed.prompt));
                        negatives.push(Some(parsed.negative_prompt));
                        for (key, value) in parsed.params {
                            params.keys().append_value(key);
                            params.values().append_value(value);
                        }
                        params.append(true)?;
                    }
                    None => {
                        prompts.push(None);
                        negatives.push(None);
                        params.append(false)?;
                    }
                }
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(prompts)),
                Arc::new(StringArray::from(negatives)),
                Arc::new(params.finish()),
            ];
            let nulls = texts.nulls().cloned();
            Ok(Arc::new(StructArray::try_new(fields(), columns, nulls)?) as ArrayRef)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::query;

    /// The three examples of `shared/testdata/a1111/README.md`, then empty text and NULL.
    #[test]
    fn a1111_parse_follows_the_readme_examples() {
        let sql = "SELECT a1111_parse(t) AS p FROM (VALUES \
             (1, 'a cat\nNegative prompt: dog'), \
             (2, 'a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7.5'), \
             (4, ''), (5, NULL)) AS v(i, t) ORDER BY i";
        let rows = query(sql);
        assert_eq!(
            rows[0].trim_end_matches([' ', '|']),
            "| {prompt: a cat, negative_prompt: dog, params: {}}"
        );
        assert_eq!(
            rows[1].trim_end_matches([' ', '|']),
            "| {prompt: a fox, negative_prompt: , params: {Steps: 20, Sampler: Euler a, CFG scale: 7.5}}"
        );
        assert_eq!(
            rows[2].trim_end_matches([' ', '|']),
            "| {prompt: , negative_prompt: , params: {}}"
        );
        assert_eq!(
            rows[3].trim_end_matches([' ', '|']),
            "",
            "NULL in, NULL out"
        );
    }

    /// The README's multi-line negative example, read through field and map access.
    #[test]
    fn fields_and_params_are_addressable() {
        assert_eq!(
            query(
                "SELECT p['prompt'] AS p, p['negative_prompt'] = 'n1' || chr(10) || 'n2' AS n, \
                 cardinality(p['params']) AS k, p['params']['Sampler'] AS s, p['params']['Seed'] AS seed \
                 FROM (SELECT a1111_parse('p\nNegative prompt: n1\nn2\nSteps: 20, Sampler: DDIM, CFG scale: 6, Seed: 7') AS p)"
            ),
            ["| p | true | 4 | DDIM | 7    |"]
        );
    }
}
