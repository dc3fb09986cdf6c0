"""Benchmark: opgraph.einsum forward (and forward+backward) vs numpy.einsum(optimize=True).

    python benchmarks/bench_einsum.py [--repeat 20] [--markdown]

This machine's environment may set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow
NumPy's BLAS; to measure the normal kernel run it as
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_einsum.py
Both sides use the same BLAS, so the ratios are fair either way; the BLAS in use is
printed (threadpoolctl, when installed).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
import opgraph  # noqa: E402
from opgraph.commands.timing import format_machine, machine_info, time_round_robin  # noqa: E402

CASES = [
    ("batched matmul", "bij,bjk->bik", [(64, 128, 128), (64, 128, 128)]),
    ("4-tensor chain", "ij,jk,kl,lm->im", [(256, 512), (512, 64), (64, 512), (512, 256)]),
    ("bilinear form", "i,ij,j->", [(1024,), (1024, 1024), (1024,)]),
    ("attention scores", "bhqd,bhkd->bhqk", [(8, 8, 128, 64), (8, 8, 128, 64)]),
]


def best_times(fns, repeat):
    """Best time of each function (the shared timing loop: interleaved rounds)."""
    timed = time_round_robin({i: (fn, lambda: None) for i, fn in enumerate(fns)},
                             min_time=float("inf"), max_reps=repeat)
    return [timed[i]["best_s"] for i in range(len(fns))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(format_machine(machine_info()))
    rows = []
    for title, subscripts, shapes in CASES:
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        tensors = [opgraph.tensor(a, requires_grad=True) for a in arrays]
        def forward():
            with opgraph.no_grad():
                opgraph.einsum(subscripts, *tensors)

        def fwd_bwd():
            out = opgraph.einsum(subscripts, *tensors)
            opgraph.grad(out.sum(), tensors)

        t_np, t_fw, t_fb = best_times(
            [lambda: np.einsum(subscripts, *arrays, optimize=True), forward, fwd_bwd],
            args.repeat)
        ref = np.einsum(subscripts, *arrays, optimize=True)
        got = opgraph.einsum(subscripts, *tensors).numpy()
        assert np.allclose(got, ref, rtol=1e-3, atol=1e-2 * max(1.0, float(np.abs(ref).max()))), title
        rows.append((title, subscripts, t_np, t_fw, t_fb))
    if args.markdown:
        print("| case | subscripts | numpy.einsum(optimize=True) | opgraph forward | ratio | "
              "opgraph forward+backward |")
        print("|---|---|---|---|---|---|")
        for title, s, t_np, t_fw, t_fb in rows:
            print(f"| {title} | `{s}` | {t_np * 1e3:.3f} ms | {t_fw * 1e3:.3f} ms | "
                  f"{t_fw / t_np:.2f}x | {t_fb * 1e3:.3f} ms |")
    else:
        print(f"{'case':<18s} {'numpy':>10s} {'forward':>10s} {'ratio':>6s} {'fwd+bwd':>10s}")
        for title, s, t_np, t_fw, t_fb in rows:
            print(f"{title:<18s} {t_np * 1e3:9.3f}ms {t_fw * 1e3:9.3f}ms {t_fw / t_np:5.2f}x "
                  f"{t_fb * 1e3:9.3f}ms")
    worst = max(t_fw / t_np for _, _, t_np, t_fw, _ in rows)
    print(f"worst forward ratio: {worst:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
