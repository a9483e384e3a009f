//! Stage 4 clusters: connected components of the verified near-duplicate edges, as the
//! aggregate UDF `connected_components(a, b)` (SQL cannot say a transitive closure cheaply).
//!
//! It returns one list of `{id, cluster_id}` for every id on an edge, where `cluster_id` is the
//! smallest id of its component: the same edges give the same clusters whatever their order or
//! partitioning, which keeps splits deterministic across thread counts. Ids on no edge are
//! singletons and keep their own id (the plan's `COALESCE`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, AggregateUDF, Volatility, create_udaf};

/// Union-find over `i64` ids with path halving and union by smaller root id.
#[derive(Debug, Default)]
pub struct Components {
    index: HashMap<i64, usize>,
    /// Parent of each node; a root is its own parent.
    parent: Vec<usize>,
    /// The id of each node.
    ids: Vec<i64>,
}

impl Components {
    fn node(&mut self, id: i64) -> usize {
        *self.index.entry(id).or_insert_with(|| {
            self.parent.push(self.ids.len());
            self.ids.push(id);
            self.ids.len() - 1
        })
    }

    fn root(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    /// Joins the components of `a` and `b`.
    pub fn union(&mut self, a: i64, b: i64) {
        let (x, y) = (self.node(a), self.node(b));
        let (rx, ry) = (self.root(x), self.root(y));
        if rx != ry {
            // The root is the node with the smaller id, so a root's id is its component's minimum.
            let (keep, child) = if self.ids[rx] < self.ids[ry] {
                (rx, ry)
            } else {
                (ry, rx)
            };
            self.parent[child] = keep;
        }
    }

    /// `(id, cluster_id)` for every id seen, sorted by id; `cluster_id` is the component's
    /// smallest id.
    pub fn assignments(&mut self) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = (0..self.ids.len())
            .map(|x| {
                let r = self.root(x);
                (self.ids[x], self.ids[r])
            })
            .collect();
        out.sort_unstable();
        out
    }
}

fn assignment_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("cluster_id", DataType::Int64, false),
    ])
}

/// The UDAF's return type: `List<Struct<id: Int64, cluster_id: Int64>>`.
fn assignment_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_struct(
        "item",
        assignment_fields(),
        true,
    )))
}

fn int64_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
}

/// Partial state: the edges seen so far, as two parallel lists.
#[derive(Debug, Default)]
struct ComponentsAccumulator {
    a: Vec<i64>,
    b: Vec<i64>,
}

impl ComponentsAccumulator {
    fn push_arrays(&mut self, a: &ArrayRef, b: &ArrayRef) {
        let (a, b) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
        for i in 0..a.len() {
            if a.is_valid(i) && b.is_valid(i) {
                self.a.push(a.value(i));
                self.b.push(b.value(i));
            }
        }
    }
}

fn int64_list(values: &[i64]) -> ScalarValue {
    ScalarValue::List(Arc::new(ListArray::new(
        Arc::new(Field::new("item", DataType::Int64, true)),
        OffsetBuffer::from_lengths([values.len()]),
        Arc::new(Int64Array::from(values.to_vec())),
        None,
    )))
}

impl Accumulator for ComponentsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.push_arrays(&values[0], &values[1]);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (a, b) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for i in 0..a.len() {
            if a.is_valid(i) && b.is_valid(i) {
                self.push_arrays(&a.value(i), &b.value(i));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![int64_list(&self.a), int64_list(&self.b)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut components = Components::default();
        for (&a, &b) in self.a.iter().zip(&self.b) {
            components.union(a, b);
        }
        let (ids, clusters): (Vec<i64>, Vec<i64>) = components.assignments().into_iter().unzip();
        let len = ids.len();
        let items = StructArray::new(
            assignment_fields(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int64Array::from(clusters)),
            ],
            None,
        );
        let field = Arc::new(Field::new_struct("item", assignment_fields(), true));
        Ok(ScalarValue::List(Arc::new(ListArray::new(
            field,
            OffsetBuffer::from_lengths([len]),
            Arc::new(items),
            None,
        ))))
    }

    fn size(&self) -> usize {
        size_of_val(self) + (self.a.capacity() + self.b.capacity()) * size_of::<i64>()
    }
}

/// `connected_components(a BIGINT, b BIGINT) -> LIST<STRUCT<id, cluster_id>>`.
pub fn connected_components_udaf() -> AggregateUDF {
    create_udaf(
        "connected_components",
        vec![DataType::Int64, DataType::Int64],
        Arc::new(assignment_list_type()),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(ComponentsAccumulator::default()))),
        Arc::new(vec![int64_list_type(), int64_list_type()]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_merge_and_take_the_smallest_id() {
        let mut c = Components::default();
        for (a, b) in [(5, 9), (9, 2), (7, 8), (-3, 8)] {
            c.union(a, b);
        }
        assert_eq!(
            c.assignments(),
            [(-3, -3), (2, 2), (5, 2), (7, -3), (8, -3), (9, 2)]
        );
    }

    #[test]
    fn edge_order_does_not_change_clusters() {
        let edges = [(1, 2), (3, 4), (2, 3), (10, 11), (12, 10)];
        let mut forward = Components::default();
        edges.iter().for_each(|&(a, b)| forward.union(a, b));
        let mut backward = Components::default();
        edges.iter().rev().for_each(|&(a, b)| backward.union(b, a));
        assert_eq!(forward.assignments(), backward.assignments());
    }

    #[test]
    fn accumulator_merges_partial_states() {
        let mut left = ComponentsAccumulator::default();
        left.update_batch(&[
            Arc::new(Int64Array::from(vec![1, 4])) as ArrayRef,
            Arc::new(Int64Array::from(vec![2, 5])) as ArrayRef,
        ])
        .unwrap();
        let mut right = ComponentsAccumulator::default();
        right
            .update_batch(&[
                Arc::new(Int64Array::from(vec![2])) as ArrayRef,
                Arc::new(Int64Array::from(vec![4])) as ArrayRef,
            ])
            .unwrap();
        let state: Vec<ArrayRef> = right
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        left.merge_batch(&state).unwrap();
        let ScalarValue::List(list) = left.evaluate().unwrap() else {
            panic!("a list")
        };
        let items = list.value(0);
        let items = items.as_struct();
        let clusters = items.column(1).as_primitive::<Int64Type>();
        assert_eq!(clusters.values().to_vec(), [1, 1, 1, 1]);
    }
}
