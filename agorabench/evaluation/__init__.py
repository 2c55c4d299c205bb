"""Evaluation: student inference on the benchmarks, scorers, and the sandbox that runs model-written code."""
