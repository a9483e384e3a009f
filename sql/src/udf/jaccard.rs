//! `jaccard(a, b)`: the Jaccard similarity of two tag sets, given as texts (tagged with
//! [`negopt_etl::canon::tags`]) or as tag lists (e.g. the `tags` column), in any mix.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::datatypes::DataType;
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{SECTION, map_arrays, tag_list_type};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        SECTION,
        "Jaccard similarity |a ∩ b| / |a ∪ b| of two tag sets, 1.0 for two empty sets \
         (negopt_etl::canon::jaccard). Each argument is a text, tagged as tags() does, or a list \
         of tags such as the tags column.",
        "jaccard(a, b)",
    )
    .with_sql_example("SELECT jaccard('a, b, c', 'c, b, d');  -- 0.5")
    .with_argument("a", "Text or list of tags.")
    .with_argument("b", "Text or list of tags.")
    .build()
});

/// `jaccard(a, b) -> float64`; NULL when either side is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JaccardFunc {
    signature: Signature,
}

impl JaccardFunc {
    /// The function, taking two texts or tag lists.
    pub fn new() -> Self {
        JaccardFunc {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for JaccardFunc {
    fn default() -> Self {
        Self::new()
    }
}

/// Which form an argument has, after coercion.
fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn is_tag_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            is_text(f.data_type())
        }
        _ => false,
    }
}

/// One row's tag set, or `None` for NULL.
fn tags_at(array: &ArrayRef, row: usize) -> Option<Vec<String>> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(negopt_etl::canon::tags(array.as_string::<i32>().value(row))),
        _ => {
            let list = array.as_list::<i32>().value(row);
            let list = list.as_string::<i32>();
            Some(list.iter().flatten().map(str::to_string).collect())
        }
    }
}

impl ScalarUDFImpl for JaccardFunc {
    fn name(&self) -> &str {
        "jaccard"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [a, b] = take_function_args(self.name(), arg_types)?;
        [a, b]
            .into_iter()
            .map(|t| match t {
                t if is_text(t) => Ok(DataType::Utf8),
                t if is_tag_list(t) => Ok(tag_list_type()),
                t => plan_err!("jaccard takes two texts or tag lists (list of strings), got {t}"),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_arrays(&args.args, |arrays| {
            // `map_arrays` casts text to Utf8; lists arrive as coerced, List<Utf8>.
            let [a, b] = take_function_args("jaccard", arrays)?;
            let out: Float64Array = (0..a.len())
                .map(|row| {
                    Some(negopt_etl::canon::jaccard(
                        &tags_at(a, row)?,
                        &tags_at(b, row)?,
                    ))
                })
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
    fn jaccard_of_texts_lists_empties_and_nulls() {
        assert_eq!(
            query("SELECT jaccard('a, b, c', '(c:1.2), B, d') AS j"),
            ["| 0.5 |"]
        );
        assert_eq!(
            query("SELECT jaccard(tags('a, b'), make_array('b', 'a')) AS j"),
            ["| 1.0 |"]
        );
        assert_eq!(query("SELECT jaccard('', ' , ') AS j"), ["| 1.0 |"]);
        assert_eq!(query("SELECT jaccard('a', '') AS j"), ["| 0.0 |"]);
        assert_eq!(
            query("SELECT jaccard(NULL, 'a') IS NULL AS n"),
            ["| true |"]
        );
    }

    #[test]
    fn jaccard_refuses_other_types() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime.block_on(async {
            let ctx = datafusion::prelude::SessionContext::new();
            super::super::register(&ctx);
            ctx.sql("SELECT jaccard(1, 'a')")
                .await
                .unwrap_err()
                .to_string()
        });
        assert!(
            err.contains("jaccard takes two texts or tag lists"),
            "{err}"
        );
    }
}
