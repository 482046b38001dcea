"""The benchmark suite (`python -m tfctl.bench`, `make bench`): tokens/s, MFU, Pattention vs Linear, growth,
data preparation, all in one run. See docs/benchmarks.md for the last results."""

from tfctl.bench.suite import BenchConfig, run_suite

__all__ = ["BenchConfig", "run_suite"]
