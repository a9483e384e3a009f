//! Domain functions for prompt data, registered in every session. Each file holds one function
//! (`FooFunc`), its documentation (shown by `\?`) and its tests.
//!
//! | function | returns | built on |
//! | --- | --- | --- |
//! | `tags(text)` | sorted canonical tag list | `negopt_etl::canon::tags`, the code curate dedups with |
//! | `strip_weights(text)` | text without A1111 emphasis, weights, `<lora:..>` | `negopt_etl::canon::strip_weights` |
//! | `jaccard(a, b)` | Jaccard of two tag sets (texts or tag lists) | `negopt_etl::canon::jaccard` |
//! | `a1111_parse(text)` | struct {prompt, negative_prompt, params map} | `negopt_etl::sources::a1111::parse` |
//! | `token_count(text)` | number of word and punctuation tokens | see `token_count.rs` |
//!
//! Conventions: NULL in, NULL out; string arguments of any string type (`Utf8`, `LargeUtf8`,
//! `Utf8View`) are accepted.

mod a1111_parse;
mod jaccard;
mod strip_weights;
mod tags;
mod token_count;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, DocSection, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use a1111_parse::A1111ParseFunc;
pub use jaccard::JaccardFunc;
pub use strip_weights::StripWeightsFunc;
pub use tags::TagsFunc;
pub use token_count::TokenCountFunc;

/// The section `\?` lists the domain functions under.
const SECTION: DocSection = DocSection {
    include: true,
    label: "Prompt functions",
    description: Some("Functions over prompt and negative-prompt text."),
};

/// Every domain function.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(TagsFunc::new()),
        ScalarUDF::from(StripWeightsFunc::new()),
        ScalarUDF::from(JaccardFunc::new()),
        ScalarUDF::from(A1111ParseFunc::new()),
        ScalarUDF::from(TokenCountFunc::new()),
    ]
}

/// Registers every domain function in `ctx`.
pub fn register(ctx: &SessionContext) {
    for udf in all() {
        ctx.register_udf(udf);
    }
}

/// Runs `f` on the arguments as arrays of one length, strings cast to `Utf8`; when every argument
/// was a scalar, the one-row answer goes back as a scalar.
fn map_arrays(
    args: &[ColumnarValue],
    f: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let all_scalars = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?
        .into_iter()
        .map(|array| match array.data_type() {
            DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                Ok(arrow::compute::cast(&array, &DataType::Utf8)?)
            }
            _ => Ok(array),
        })
        .collect::<Result<Vec<_>>>()?;
    let out = f(&arrays)?;
    if all_scalars {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// The type of a list of tags.
fn tag_list_type() -> DataType {
    DataType::List(Arc::new(arrow::datatypes::Field::new_list_field(
        DataType::Utf8,
        true,
    )))
}

#[cfg(test)]
mod test_support {
    //! Runs SQL against a session with the domain functions, for the functions' own tests.

    use arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    /// The pretty-printed result of `sql` (one row per line, without the box).
    pub fn query(sql: &str) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ctx = SessionContext::new();
            super::register(&ctx);
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let table = pretty_format_batches(&batches).unwrap().to_string();
            table
                .lines()
                .skip(3)
                .filter(|l| !l.starts_with('+'))
                .map(|l| l.to_string())
                .collect()
        })
    }
}
