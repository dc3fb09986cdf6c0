"""Per-op overhead: one SGD training step of a tiny MLP on a single sample, where all the
time is framework overhead (the arithmetic is a few hundred flops). opgraph vs PyTorch CPU
(when installed) vs plain NumPy with hand-written gradients, side by side in one run.

    python benchmarks/bench_overhead.py [--repeat 2000]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
import opgraph as og  # noqa: E402
from opgraph.commands.timing import format_machine, machine_info, time_round_robin  # noqa: E402


def opgraph_step(sizes=(16, 32, 10), seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32  # float32 throughout, as on the PyTorch side
    w1 = og.tensor(rng.standard_normal(sizes[:2]) * 0.1, requires_grad=True, dtype=f32)
    b1 = og.tensor(np.zeros(sizes[1]), requires_grad=True, dtype=f32)
    w2 = og.tensor(rng.standard_normal(sizes[1:]) * 0.1, requires_grad=True, dtype=f32)
    b2 = og.tensor(np.zeros(sizes[2]), requires_grad=True, dtype=f32)
    x = og.tensor(rng.standard_normal((1, sizes[0])), dtype=f32)
    y = og.tensor([3])
    params = [w1, b1, w2, b2]

    def step():
        loss = og.cross_entropy((x @ w1 + b1).relu() @ w2 + b2, y)
        loss.backward()
        for p in params:
            p.data = p.data - 0.01 * p.grad.data
            p.grad = None
    return step


def torch_step(sizes=(16, 32, 10), seed=0):
    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    w1 = torch.tensor(rng.standard_normal(sizes[:2]) * 0.1, dtype=torch.float32, requires_grad=True)
    b1 = torch.zeros(sizes[1], requires_grad=True)
    w2 = torch.tensor(rng.standard_normal(sizes[1:]) * 0.1, dtype=torch.float32, requires_grad=True)
    b2 = torch.zeros(sizes[2], requires_grad=True)
    x = torch.tensor(rng.standard_normal((1, sizes[0])), dtype=torch.float32)
    y = torch.tensor([3])
    params = [w1, b1, w2, b2]

    def step():
        loss = torch.nn.functional.cross_entropy(torch.relu(x @ w1 + b1) @ w2 + b2, y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.01 * p.grad
                p.grad = None
    return step


def numpy_step(sizes=(16, 32, 10), seed=0):
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal(sizes[:2]) * 0.1).astype(np.float32)
    b1 = np.zeros(sizes[1], np.float32)
    w2 = (rng.standard_normal(sizes[1:]) * 0.1).astype(np.float32)
    b2 = np.zeros(sizes[2], np.float32)
    x = rng.standard_normal((1, sizes[0])).astype(np.float32)
    y = 3
    params = [w1, b1, w2, b2]

    def step():
        h = x @ w1 + b1
        a = np.maximum(h, 0)
        z = a @ w2 + b2
        p = np.exp(z - z.max())
        p /= p.sum()
        dz = p.copy()
        dz[0, y] -= 1
        grads = [x.T @ ((dz @ w2.T) * (h > 0)), ((dz @ w2.T) * (h > 0)).sum(0), a.T @ dz, dz.sum(0)]
        for q, g in zip(params, grads):
            q -= 0.01 * g
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    steps = {"opgraph": opgraph_step(), "numpy (hand-written)": numpy_step()}
    try:
        steps["pytorch"] = torch_step()
    except ImportError:
        pass
    for step in steps.values():  # warm-up: caches, allocator, branch predictors
        for _ in range(50):
            step()
    number = max(1, args.repeat // 20)  # calls per timed sample: a few ms, well above the clock
    timed = time_round_robin({name: (step, lambda: None) for name, step in steps.items()},
                             min_time=float("inf"), max_reps=20, number=number)
    rows = {name: timed[name]["best_s"] if name in timed else None
            for name in ("opgraph", "numpy (hand-written)", "pytorch")}
    print(format_machine(machine_info()))
    print(f"{'one MLP training step, batch 1':34s} {'µs/step':>9s} {'opgraph / this':>15s}")
    for name, sec in rows.items():
        if sec is None:
            print(f"{name:34s} {'absent':>9s}")
        else:
            print(f"{name:34s} {sec * 1e6:9.1f} {rows['opgraph'] / sec:15.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
