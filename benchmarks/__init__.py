"""Benchmarks: `python -m benchmarks --mode quick` (CPU) or `--mode full` (GPU). See README.md."""
