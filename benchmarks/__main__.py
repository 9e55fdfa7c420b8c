"""`python -m benchmarks [--quick] [--threads N]`: every benchmark, then docs/benchmarks.md."""

import sys

from benchmarks import accuracy, overhead, summary, throughput

if __name__ == "__main__":
    for benchmark in (overhead, accuracy, throughput):
        benchmark.main(sys.argv[1:])
    summary.main()
