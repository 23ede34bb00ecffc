"""The model lifecycle: corpus, training, evaluation, promotion; each stage a function."""
