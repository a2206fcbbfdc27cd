"""Ray Tune fan-out of an experiment's trials: plan (shards, order, resources, packing),
worker (the Tune trainable), callbacks (MLflow writes, the progress line) and driver."""
