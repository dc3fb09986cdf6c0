"""Backends vs peers: a thin script around `python -m opgraph bench` (opgraph/commands/bench_suite.py).

    python benchmarks/bench_backends.py [--backend numpy --backend numba] [--quick] [--json PATH]

NumPy's BLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it loads; to time
the BLAS kernel OpenBLAS picks by itself, unset both for this command only:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_backends.py
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opgraph.commands import bench  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_arguments(parser)
    return bench.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
