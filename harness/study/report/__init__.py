"""The robustness report, rebuilt from the MLflow store alone: build (read-only), plots,
document (markdown and HTML from one list of blocks)."""
