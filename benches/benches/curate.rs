//! `etl curate` on 1,000,000 synthetic raw pairs (30% exact duplicates, 10% near duplicates, over
//! 4 sources): the whole pipeline, against a peer measured in the same run — DataFusion's own
//! `SELECT DISTINCT prompt, negative_prompt` over the same table (exact text dedup only), the
//! least any dedup pass costs. After the runs it prints the median time of each stage and the
//! process's peak RSS (VmHWM, which includes the generated input).
//!
//! Run: `cargo bench -p negopt-benches --bench curate` (set `CURATE_BENCH_ROWS` for a smaller run).
//! `CURATE_BENCH_ONCE=1` skips criterion and times one pipeline run, stage by stage (for quick
//! iteration and for profiling under `perf record`); `CURATE_BENCH_CONFIG=file.toml` runs a
//! curate config other than the default (e.g. other LSH bands).
//! Target (issue 4): under 20 s and 4 GiB peak RSS on the 2-core machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use negopt_benches::peak_rss_mib;
use negopt_etl::curate::config::CurateConfig;
use negopt_etl::curate::curate_batches;
use negopt_etl::curate::synthetic::{self, Mix, RawRow, raw_batch, raw_pairs_schema};

/// Rows to generate: 1,000,000 unless `CURATE_BENCH_ROWS` says otherwise.
fn rows() -> usize {
    std::env::var("CURATE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The default curate config, or the file `CURATE_BENCH_CONFIG` names.
fn config() -> CurateConfig {
    match std::env::var_os("CURATE_BENCH_CONFIG") {
        Some(path) => CurateConfig::from_file(path.as_ref()).expect("CURATE_BENCH_CONFIG file"),
        None => CurateConfig::default(),
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |p| p.get())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The synthetic input: `n` rows, 30% exact and 10% near duplicates, 4 sources.
fn input(n: usize) -> Vec<RecordBatch> {
    let rows: Vec<RawRow> = synthetic::generate(
        n,
        Mix {
            exact: 0.3,
            near: 0.1,
        },
        4,
        42,
    )
    .into_iter()
    .map(|l| l.row)
    .collect();
    rows.chunks(8192).map(raw_batch).collect()
}

/// One timed run, each stage's time and the peak RSS printed.
fn once() {
    let n = rows();
    let batches = input(n);
    let started = Instant::now();
    let out = runtime()
        .block_on(curate_batches(
            batches,
            raw_pairs_schema(),
            &config(),
            threads(),
        ))
        .expect("curate runs");
    let total = started.elapsed();
    println!("curate once ({n} rows, {} threads):", threads());
    for (stage, t) in &out.times {
        println!("  {stage:<18} {:>8.3} s", t.as_secs_f64());
    }
    println!("  {:<18} {:>8.3} s", "total", total.as_secs_f64());
    print!("{}", out.report.summary());
    for metric in ["candidate_pairs", "verified_pairs"] {
        let n = out.report.total("near_dedup", metric, "").unwrap_or(0.0);
        println!("  {metric:<18} {n:>10}");
    }
    if let Some(gib) = peak_rss_mib().map(|mib| mib / 1024.0) {
        println!("peak RSS (VmHWM) {gib:.2} GiB");
    }
}

fn bench_curate(c: &mut Criterion) {
    let n = rows();
    let threads = threads();
    let runtime = runtime();
    let batches = input(n);
    let config = config();
    let mut stage_times: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    let mut group = c.benchmark_group(format!("cpu_curate_{n}_rows"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(60));
    group.bench_function("pipeline", |b| {
        b.iter(|| {
            let out = runtime
                .block_on(curate_batches(
                    batches.clone(),
                    raw_pairs_schema(),
                    &config,
                    threads,
                ))
                .expect("curate runs");
            for (stage, t) in &out.times {
                stage_times.entry(stage).or_default().push(*t);
            }
            out.db.len()
        })
    });
    group.bench_function("peer_datafusion_select_distinct", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let ctx = SessionContext::new_with_config(
                    SessionConfig::new().with_target_partitions(threads),
                );
                let table = MemTable::try_new(raw_pairs_schema(), vec![batches.clone()])
                    .expect("mem table");
                ctx.register_table("raw_pairs", Arc::new(table))
                    .expect("register");
                let df = ctx
                    .sql("SELECT DISTINCT prompt, negative_prompt FROM raw_pairs")
                    .await
                    .expect("plan");
                df.collect().await.expect("run").len()
            })
        })
    });
    group.finish();
    println!(
        "curate stage medians over {} runs ({n} rows, {threads} threads):",
        stage_times.values().next().map_or(0, Vec::len)
    );
    for (stage, times) in &mut stage_times {
        times.sort();
        println!(
            "  {stage:<18} {:>8.3} s",
            times[times.len() / 2].as_secs_f64()
        );
    }
    if let Some(gib) = peak_rss_mib().map(|mib| mib / 1024.0) {
        println!("peak RSS (VmHWM) {gib:.2} GiB");
    }
}

criterion_group!(benches, bench_curate);

fn main() {
    if std::env::var_os("CURATE_BENCH_ONCE").is_some() {
        once();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
