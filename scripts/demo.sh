#!/usr/bin/env bash
# The main job on the bundled data; `make demo` runs it inside the project's .venv.
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${DEMO_OUT:-demo_out}
mkdir -p "$OUT"
gl() { "$PYTHON" -m genolong "$@"; }

echo "== 1. check the inputs"
gl inspect data/ecoli_200k.fa
gl inspect data/ecoli_200k.cds.gff3 --json > "$OUT/annotation_summary.json"
echo "annotation summary written to $OUT/annotation_summary.json"
