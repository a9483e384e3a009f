//! The curate plan's UDFs: thin Arrow wrappers over the pure functions of the stage modules,
//! registered on a `SessionContext` with the config they close over.
//!
//! | UDF                                             | returns                          | stage |
//! |-------------------------------------------------|----------------------------------|-------|
//! | `curate_row(prompt, negative, nsfw_level)`      | `STRUCT` of [`checked_fields`]   | 1–3   |
//! | `lsh_bands(p_hashes, n_hashes)`                 | `LIST<BIGINT>` band keys         | 4     |
//! | `bucket_pairs(ids)`                             | `LIST<STRUCT<a, b>>` candidates  | 4     |
//! | `pair_similarity(p_a, n_a, p_b, n_b)`           | `DOUBLE` min of both Jaccards    | 4     |
//! | `connected_components(a, b)` (aggregate)        | `LIST<STRUCT<id, cluster_id>>`   | 4     |
//! | `split_of(cluster_id)`                          | `train`, `val` or `test`         | 5     |
//!
//! `curate_row` does all the per-row work of stages 1–3 in one pass over the text (normal forms,
//! canonical tags, the first filter rule broken, flags, the pair id, the tag hashes the MinHash
//! stage and the verification use), writing straight into Arrow builders: one UDF call per batch
//! instead of one per column and stage, and the normal forms and tags computed once.

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
use super::minhash::{Lsh, bucket_pairs, hashed_similarity, tag_hashes};
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
    for udf in [
        curate_row_udf(filters, lsh.seed()),
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

fn int64_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
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

/// Row `i` of a `LIST<BIGINT>` (no copy); a NULL list reads as empty.
fn hash_row(list: &ListArray, i: usize) -> &[i64] {
    let offsets = list.value_offsets();
    let values = list.values().as_primitive::<Int64Type>().values();
    &values[offsets[i] as usize..offsets[i + 1] as usize]
}

/// The fields of `curate_row`'s struct, in order: what stages 1–3 know of a row.
///
/// | field             | type            | NULL when                 |
/// |-------------------|-----------------|---------------------------|
/// | `prompt_norm`     | `VARCHAR`       | the prompt is NULL        |
/// | `negative_norm`   | `VARCHAR`       | the negative is NULL      |
/// | `prompt_tags`     | `LIST<VARCHAR>` | the prompt is NULL        |
/// | `tags`            | `LIST<VARCHAR>` | the negative is NULL      |
/// | `reason`          | `VARCHAR`       | the row passes every rule |
/// | `flags`           | `LIST<VARCHAR>` | never (empty if dropped)  |
/// | `id`              | `BIGINT`        | never: the pair key       |
/// | `prompt_hashes`   | `LIST<BIGINT>`  | never: tag hashes         |
/// | `negative_hashes` | `LIST<BIGINT>`  | never                     |
pub fn checked_fields() -> Fields {
    Fields::from(vec![
        Field::new("prompt_norm", DataType::Utf8, true),
        Field::new("negative_norm", DataType::Utf8, true),
        Field::new("prompt_tags", utf8_list_type(), true),
        Field::new("tags", utf8_list_type(), true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("flags", utf8_list_type(), true),
        Field::new("id", DataType::Int64, true),
        Field::new("prompt_hashes", int64_list_type(), true),
        Field::new("negative_hashes", int64_list_type(), true),
    ])
}

/// Builders of the [`checked_fields`] columns.
struct CheckedBuilder {
    prompt_norm: StringBuilder,
    negative_norm: StringBuilder,
    prompt_tags: ListBuilder<StringBuilder>,
    tags: ListBuilder<StringBuilder>,
    reason: StringBuilder,
    flags: ListBuilder<StringBuilder>,
    id: Int64Builder,
    prompt_hashes: ListBuilder<Int64Builder>,
    negative_hashes: ListBuilder<Int64Builder>,
}

impl CheckedBuilder {
    /// Builders sized for `rows` rows whose prompts and negatives have `prompt_bytes` and
    /// `negative_bytes` bytes in all (normal forms and tags are about as long as the text), so
    /// they are not regrown and copied as they fill.
    fn with_capacity(rows: usize, prompt_bytes: usize, negative_bytes: usize) -> Self {
        let tags = |bytes: usize| {
            ListBuilder::with_capacity(StringBuilder::with_capacity(rows * 8, bytes), rows)
        };
        let hashes = || ListBuilder::with_capacity(Int64Builder::with_capacity(rows * 12), rows);
        Self {
            prompt_norm: StringBuilder::with_capacity(rows, prompt_bytes),
            negative_norm: StringBuilder::with_capacity(rows, negative_bytes),
            prompt_tags: tags(prompt_bytes),
            tags: tags(negative_bytes),
            reason: StringBuilder::with_capacity(rows, rows),
            flags: ListBuilder::with_capacity(StringBuilder::new(), rows),
            id: Int64Builder::with_capacity(rows),
            prompt_hashes: hashes(),
            negative_hashes: hashes(),
        }
    }

    /// Appends one row; `norm` and `tags` are `None` where the input text is NULL.
    fn append_text(
        norm_out: &mut StringBuilder,
        tags_out: &mut ListBuilder<StringBuilder>,
        norm: Option<&str>,
        tags: &[&str],
    ) {
        norm_out.append_option(norm);
        match norm {
            Some(_) => {
                tags.iter().for_each(|t| tags_out.values().append_value(t));
                tags_out.append(true);
            }
            None => tags_out.append_null(),
        }
    }

    fn finish(mut self) -> StructArray {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.prompt_norm.finish()),
            Arc::new(self.negative_norm.finish()),
            Arc::new(self.prompt_tags.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.prompt_hashes.finish()),
            Arc::new(self.negative_hashes.finish()),
        ];
        StructArray::new(checked_fields(), columns, None)
    }
}

fn curate_row_udf(filters: Arc<Filters>, seed: u64) -> ScalarUDF {
    create_udf(
        "curate_row",
        vec![DataType::Utf8, DataType::Utf8, DataType::Utf8],
        DataType::Struct(checked_fields()),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let [prompts, negatives, levels] = [0, 1, 2].map(|i| arrays[i].as_string::<i32>());
            fn value(a: &StringArray, i: usize) -> Option<&str> {
                a.is_valid(i).then(|| a.value(i))
            }
            let mut out = CheckedBuilder::with_capacity(
                prompts.len(),
                prompts.value_data().len(),
                negatives.value_data().len(),
            );
            for i in 0..prompts.len() {
                let prompt_norm = value(prompts, i).map(normalise);
                let negative_norm = value(negatives, i).map(normalise);
                let prompt_tags = prompt_norm.as_deref().map(canon::tags).unwrap_or_default();
                let negative_tags = negative_norm
                    .as_deref()
                    .map(canon::tags)
                    .unwrap_or_default();
                let prompt_tags: Vec<&str> = prompt_tags.iter().map(String::as_str).collect();
                let negative_tags: Vec<&str> = negative_tags.iter().map(String::as_str).collect();
                let row = RowText {
                    prompt: prompt_norm.as_deref().unwrap_or_default(),
                    negative: negative_norm.as_deref().unwrap_or_default(),
                    prompt_tags: &prompt_tags,
                    negative_tags: &negative_tags,
                    nsfw_level: value(levels, i),
                };
                let reason = filters.check(&row);
                out.reason.append_option(reason.map(|r| r.as_str()));
                if reason.is_none() {
                    for flag in filters.flags(row.prompt, row.nsfw_level) {
                        out.flags.values().append_value(flag);
                    }
                }
                out.flags.append(true);
                out.id
                    .append_value(canon::pair_key(&prompt_tags, &negative_tags));
                out.prompt_hashes
                    .values()
                    .append_slice(&tag_hashes(seed, &prompt_tags));
                out.prompt_hashes.append(true);
                out.negative_hashes
                    .values()
                    .append_slice(&tag_hashes(seed, &negative_tags));
                out.negative_hashes.append(true);
                CheckedBuilder::append_text(
                    &mut out.prompt_norm,
                    &mut out.prompt_tags,
                    prompt_norm.as_deref(),
                    &prompt_tags,
                );
                CheckedBuilder::append_text(
                    &mut out.negative_norm,
                    &mut out.tags,
                    negative_norm.as_deref(),
                    &negative_tags,
                );
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

fn lsh_bands_udf(lsh: Arc<Lsh>) -> ScalarUDF {
    create_udf(
        "lsh_bands",
        vec![int64_list_type(), int64_list_type()],
        int64_list_type(),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = arrays(args)?;
            let (pt, nt) = (arrays[0].as_list::<i32>(), arrays[1].as_list::<i32>());
            let mut out = ListBuilder::new(Int64Builder::new());
            for i in 0..pt.len() {
                out.values()
                    .append_slice(&lsh.band_keys_of_hashes(hash_row(pt, i), hash_row(nt, i)));
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
        vec![int64_list_type()],
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
            int64_list_type(),
            int64_list_type(),
            int64_list_type(),
            int64_list_type(),
        ],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = arrays(args)?;
            let l: Vec<&ListArray> = arrays.iter().map(|a| a.as_list::<i32>()).collect();
            let out: Float64Array = (0..l[0].len())
                .map(|i| {
                    hashed_similarity(
                        hash_row(l[0], i),
                        hash_row(l[1], i),
                        hash_row(l[2], i),
                        hash_row(l[3], i),
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
