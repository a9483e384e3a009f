//! The curate plan's UDFs: thin Arrow wrappers over the pure functions of the stage modules,
//! registered on a `SessionContext` with the config they close over.
//!
//! | UDF                                             | returns                          | stage |
//! |-------------------------------------------------|----------------------------------|-------|
//! | `normalise(text)`                               | normal form                      | 1     |
//! | `tags(text)`                                    | `LIST<VARCHAR>` canonical tags   | 1     |
//! | `reject_reason(p_norm, n_norm, p_tags, n_tags)` | reason or NULL (NULL text = "") | 2     |
//! | `curate_flags(p_norm)`                          | `LIST<VARCHAR>` flags            | 2     |
//! | `pair_key(p_tags, n_tags)`                      | `BIGINT` canonical pair id       | 3     |
//! | `lsh_bands(p_tags, n_tags)`                     | `LIST<BIGINT>` band keys         | 4     |
//! | `bucket_pairs(ids)`                             | `LIST<STRUCT<a, b>>` candidates  | 4     |
//! | `pair_similarity(p_a, n_a, p_b, n_b)`           | `DOUBLE` min of both Jaccards    | 4     |
//! | `connected_components(a, b)` (aggregate)        | `LIST<STRUCT<id, cluster_id>>`   | 4     |
//! | `split_of(cluster_id)`                          | `train`, `val` or `test`         | 5     |

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, Int64Builder, ListArray, ListBuilder,
    StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use super::components::connected_components_udaf;
use super::config::CurateConfig;
use super::filters::{Filters, RowText};
use super::minhash::{Lsh, bucket_pairs};
use super::normalise::normalise;
use super::split::split_of;
use crate::canon;

/// Registers every curate UDF on `ctx`, closed over `config`.
pub fn register(ctx: &SessionContext, config: &CurateConfig) {
    let filters = Arc::new(Filters::new(&config.filter));
    let lsh = Arc::new(Lsh::new(
        config.dedup.bands,
        config.dedup.rows_per_band,
        config.dedup.seed,
    ));
    let max_bucket = config.dedup.max_bucket;
    let split = config.split.clone();
    let flag_filters = Arc::clone(&filters);
    for udf in [
        string_to_string("normalise", normalise),
        tags_udf(),
        reject_reason_udf(filters),
        flags_udf(flag_filters),
        pair_key_udf(),
        lsh_bands_udf(lsh),
        bucket_pairs_udf(max_bucket),
        pair_similarity_udf(),
        split_udf(move |id| split_of(id, &split)),
    ] {
        ctx.register_udf(udf);
    }
    ctx.register_udaf(connected_components_udaf());
}

fn utf8_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The arguments as arrays of one length, strings cast to `Utf8` (views and large strings too).
fn arrays(args: &[ColumnarValue]) -> Result<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(args)?
        .into_iter()
        .map(|a| match a.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => Ok(cast(&a, &DataType::Utf8)?),
            _ => Ok(a),
        })
        .collect()
}

/// Row `i` of a `LIST<VARCHAR>` as string slices (no copies).
fn tag_row(list: &ListArray, i: usize) -> Vec<&str> {
    let values = list.values().as_string::<i32>();
    let offsets = list.value_offsets();
    (offsets[i] as usize..offsets[i + 1] as usize)
        .map(|j| values.value(j))
        .collect()
}

fn string_to_string(name: &str, f: fn(&str) -> String) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let out: StringArray = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(f))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

fn tags_udf() -> ScalarUDF {
    create_udf(
        "tags",
        vec![DataType::Utf8],
        utf8_list_type(),
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = arrays(args)?;
            let texts = arrays[0].as_string::<i32>();
            let mut out = ListBuilder::new(StringBuilder::new());
            for text in texts.iter() {
                match text {
                    Some(text) => {
                        canon::tags(text)
                            .iter()
                            .for_each(|t| out.values().append_value(t));
                        out.append(true);
                    }
                    None => out.append_null(),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

fn reject_reason_udf(filters: Arc<Filters>) -> ScalarUDF {
    create_udf(
        "reject_reason",
        vec![
            DataType::Utf8,
            DataType::Utf8,
            utf8_list_type(),
            utf8_list_type(),
        ],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let (p, n) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
            let (pt, nt) = (arrays[2].as_list::<i32>(), arrays[3].as_list::<i32>());
            fn text(a: &StringArray, i: usize) -> &str {
                if a.is_valid(i) { a.value(i) } else { "" }
            }
            let out: StringArray = (0..p.len())
                .map(|i| {
                    let (prompt_tags, negative_tags) = (tag_row(pt, i), tag_row(nt, i));
                    let row = RowText {
                        prompt: text(p, i),
                        negative: text(n, i),
                        prompt_tags: &prompt_tags,
                        negative_tags: &negative_tags,
                    };
                    filters.check(&row).map(|r| r.as_str())
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

fn flags_udf(filters: Arc<Filters>) -> ScalarUDF {
    create_udf(
        "curate_flags",
        vec![DataType::Utf8],
        utf8_list_type(),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let mut out = ListBuilder::new(StringBuilder::new());
            for prompt in arrays[0].as_string::<i32>().iter() {
                for flag in filters.flags(prompt.unwrap_or_default()) {
                    out.values().append_value(flag);
                }
                out.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

fn pair_key_udf() -> ScalarUDF {
    create_udf(
        "pair_key",
        vec![utf8_list_type(), utf8_list_type()],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = arrays(args)?;
            let (pt, nt) = (arrays[0].as_list::<i32>(), arrays[1].as_list::<i32>());
            let out: Int64Array = (0..pt.len())
                .map(|i| canon::pair_key(&tag_row(pt, i), &tag_row(nt, i)))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

fn lsh_bands_udf(lsh: Arc<Lsh>) -> ScalarUDF {
    create_udf(
        "lsh_bands",
        vec![utf8_list_type(), utf8_list_type()],
        DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let (pt, nt) = (arrays[0].as_list::<i32>(), arrays[1].as_list::<i32>());
            let mut out = ListBuilder::new(Int64Builder::new());
            for i in 0..pt.len() {
                out.values()
                    .append_slice(&lsh.band_keys(&tag_row(pt, i), &tag_row(nt, i)));
                out.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

fn pair_fields() -> Fields {
    Fields::from(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Int64, false),
    ])
}

fn bucket_pairs_udf(max_bucket: usize) -> ScalarUDF {
    let item = Arc::new(Field::new_struct("item", pair_fields(), true));
    create_udf(
        "bucket_pairs",
        vec![DataType::List(Arc::new(Field::new(
            "item",
            DataType::Int64,
            true,
        )))],
        DataType::List(Arc::clone(&item)),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let buckets = arrays[0].as_list::<i32>();
            let (mut a, mut b, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..buckets.len() {
                let mut ids: Vec<i64> = buckets
                    .value(i)
                    .as_primitive::<Int64Type>()
                    .iter()
                    .flatten()
                    .collect();
                let pairs = bucket_pairs(&mut ids, max_bucket);
                lengths.push(pairs.len());
                for (x, y) in pairs {
                    a.push(x);
                    b.push(y);
                }
            }
            let items = StructArray::new(
                pair_fields(),
                vec![Arc::new(Int64Array::from(a)), Arc::new(Int64Array::from(b))],
                None,
            );
            let list = ListArray::new(
                Arc::clone(&item),
                OffsetBuffer::from_lengths(lengths),
                Arc::new(items),
                None,
            );
            Ok(ColumnarValue::Array(Arc::new(list)))
        }),
    )
}

fn pair_similarity_udf() -> ScalarUDF {
    create_udf(
        "pair_similarity",
        vec![
            utf8_list_type(),
            utf8_list_type(),
            utf8_list_type(),
            utf8_list_type(),
        ],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = arrays(args)?;
            let l: Vec<&ListArray> = arrays.iter().map(|a| a.as_list::<i32>()).collect();
            let out: Float64Array = (0..l[0].len())
                .map(|i| {
                    canon::pair_similarity(
                        &tag_row(l[0], i),
                        &tag_row(l[1], i),
                        &tag_row(l[2], i),
                        &tag_row(l[3], i),
                    )
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

fn split_udf(f: impl Fn(i64) -> &'static str + Send + Sync + 'static) -> ScalarUDF {
    create_udf(
        "split_of",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let out: StringArray = arrays[0]
                .as_primitive::<Int64Type>()
                .iter()
                .map(|id| id.map(&f))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}
