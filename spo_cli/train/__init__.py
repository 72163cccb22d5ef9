"""The learner behind `spo train`: config, data, batching, checkpoints and the loop."""
