"""Speed and accuracy benchmarks of neuralab, run by `make bench` (`python -m benchmarks`).

Each module writes `benchmarks/results/<name>.json`; `benchmarks.summary` turns those files
into docs/benchmarks.md. `--quick` shrinks every size to check the pipeline end to end in a
few minutes; its figures are not measurements.
"""
