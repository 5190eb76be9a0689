"""Pipelines: variant-effect scoring, embeddings, in-silico mutagenesis, generation, evaluation."""
