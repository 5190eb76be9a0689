#!/usr/bin/env bash
# The main job on the bundled data; `make demo` runs it inside the project's .venv.
# Check the inputs, train a tiny Hyena model on 170 kbp of a real E. coli contig, export it as a Hugging Face
# model, evaluate it on the held-out 30 kbp against an order-k Markov baseline, and write a report.
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${DEMO_OUT:-demo_out}
STEPS=${DEMO_STEPS:-200}
mkdir -p "$OUT"
gl() { "$PYTHON" -m genolong "$@"; }

echo "== 1/5 check the inputs"
gl inspect data/ecoli_200k.fa
gl inspect data/ecoli_200k.cds.gff3 --json > "$OUT/annotation.json"
gl inspect data/ecoli_200k.variants.vcf.gz --fasta data/ecoli_200k.fa --json > "$OUT/variants.json"
gl inspect data/ecoli_200k.reads.bam --json > "$OUT/reads.json"
echo "summaries of the annotation, variants and reads: $OUT/{annotation,variants,reads}.json"

echo "== 2/5 train a tiny Hyena language model ($STEPS steps on 2 CPU cores)"
rm -rf "$OUT/run"
gl fit --config configs/hyena/tiny.yaml --trainer.max_steps "$STEPS" \
  --trainer.default_root_dir "$OUT/run" --checkpoint.dirpath "$OUT/run/checkpoints" \
  --trainer.enable_progress_bar false

echo "== 3/5 export it as a Hugging Face model directory"
gl export "$OUT/run/checkpoints/last.ckpt" "$OUT/model"

echo "== 4/5 evaluate on the held-out region against the Markov baseline"
gl evaluate --model "$OUT/model" --fasta data/ecoli_200k.fa \
  --regions MIIJ01000039.1:170001-200000 --train_regions MIIJ01000039.1:1-170000 --output "$OUT/evaluation.json"

echo "== 5/5 report"
"$PYTHON" scripts/demo_report.py "$OUT" > "$OUT/report.md"
cat "$OUT/report.md"
