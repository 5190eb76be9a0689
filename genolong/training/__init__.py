"""Lightning modules: language-model pre-training and sequence-task fine-tuning."""
