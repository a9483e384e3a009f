#!/usr/bin/env bash
# The main job end to end on the embedded default: no network, tiny models, CPU.
#
#   etl crawl --fixtures   a fixture server on 127.0.0.1 (started by the command) → raw_pages, raw_pairs
#   etl curate             raw_pairs → negative_prompts_db, curation_rejects, curation_report
#   sql                    example queries over negative_prompts_db
#   engine tokenizer train + engine train --stage sft (tiny T5) + engine eval + engine generate
#
# Catalog: ./npdb-demo (recreated each run); training run: ./runs/sft-tiny.
set -euo pipefail
cd "$(dirname "$0")/.."
export NEGOPT_CATALOG="$PWD/npdb-demo"
# The dev profile: the engine and its GEMM are optimised even there (see Cargo.toml), and a dev
# build takes a fraction of a release build's time on a small machine.
bin=target/debug

echo "== build"
cargo build --quiet --bin etl --bin sql --bin engine

rm -rf "$NEGOPT_CATALOG" runs/sft-tiny runs/tokenizer.json

echo "== etl crawl: every source of the fixture server on 127.0.0.1"
"$bin/etl" crawl --fixtures --fixture-items 2000

echo "== etl curate"
"$bin/etl" curate

echo "== sql: the catalog and a few example queries"
"$bin/sql" -c '\d'
"$bin/sql" -c "SELECT split, count(*) AS pairs FROM negative_prompts_db GROUP BY split ORDER BY split;"
"$bin/sql" -c "SELECT tag, count(*) AS n FROM (SELECT unnest(tags(negative_prompt)) AS tag FROM negative_prompts_db) GROUP BY tag ORDER BY n DESC, tag LIMIT 10;"

echo "== engine: tokenizer, SFT of the tiny T5, evaluation, generation"
"$bin/engine" tokenizer train --out runs/tokenizer.json
"$bin/engine" train --stage sft --config engine/configs/sft-tiny.toml
"$bin/engine" eval --stage sft --checkpoint runs/sft-tiny --config engine/configs/sft-tiny.toml
"$bin/engine" generate --checkpoint runs/sft-tiny \
  "a red circle on a white background, flat illustration" \
  "photo of a blue cube on grass, realistic, detailed"

echo "== done: catalog in $NEGOPT_CATALOG, loss curve in runs/sft-tiny/loss.png"
