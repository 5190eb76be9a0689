#!/usr/bin/env bash
# The main job on the bundled data; `make demo` runs it inside the project's .venv.
# Check the inputs, train a tiny Hyena model on 170 kbp of a real E. coli contig, export it as a Hugging Face
# model, evaluate it on the held-out 30 kbp against an order-k Markov baseline, score the bundled variants
# (TSV + annotated VCF), run in-silico mutagenesis over a gene start (table + heatmap), and write a report.
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${DEMO_OUT:-demo_out}
STEPS=${DEMO_STEPS:-400}
mkdir -p "$OUT"
gl() { "$PYTHON" -m genolong "$@"; }

echo "== 1/7 check the inputs"
gl inspect data/ecoli_200k.fa
gl inspect data/ecoli_200k.cds.gff3 --json > "$OUT/annotation.json"
gl inspect data/ecoli_200k.variants.vcf.gz --fasta data/ecoli_200k.fa --json > "$OUT/variants.json"
gl inspect data/ecoli_200k.reads.bam --json > "$OUT/reads.json"
echo "summaries of the annotation, variants and reads: $OUT/{annotation,variants,reads}.json"

echo "== 2/7 train a tiny Hyena language model ($STEPS steps on 2 CPU cores)"
rm -rf "$OUT/run"
gl fit --config configs/hyena/tiny.yaml --trainer.max_steps "$STEPS" \
  --trainer.default_root_dir "$OUT/run" --checkpoint.dirpath "$OUT/run/checkpoints" \
  --trainer.enable_progress_bar false

echo "== 3/7 export it as a Hugging Face model directory"
gl export "$OUT/run/checkpoints/last.ckpt" "$OUT/model"

echo "== 4/7 evaluate on the held-out region against the Markov baseline"
gl evaluate --model "$OUT/model" --fasta data/ecoli_200k.fa \
  --regions MIIJ01000039.1:170001-200000 --train_regions MIIJ01000039.1:1-170000 --output "$OUT/evaluation.json"

echo "== 5/7 score the bundled variants (log-likelihood ratio, both strands)"
gl score-variants --model "$OUT/model" --fasta data/ecoli_200k.fa --vcf data/ecoli_200k.variants.vcf.gz \
  --output "$OUT/variant_scores.tsv"
gl score-variants --model "$OUT/model" --fasta data/ecoli_200k.fa --vcf data/ecoli_200k.variants.vcf.gz \
  --output "$OUT/variant_scores.vcf.gz"

echo "== 6/7 in-silico mutagenesis: 40 bases before and 60 into the gene cds167 (start codon at 177,323)"
gl ism --model "$OUT/model" --fasta data/ecoli_200k.fa --region MIIJ01000039.1:177283-177382 \
  --output "$OUT/ism.tsv" --heatmap "$OUT/ism.png"

echo "== 7/7 report"
"$PYTHON" scripts/demo_report.py "$OUT" > "$OUT/report.md"
cat "$OUT/report.md"
