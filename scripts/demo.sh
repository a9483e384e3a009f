#!/usr/bin/env bash
# The main job end to end on the embedded default: no network, tiny models, CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
echo "demo: binaries built"
