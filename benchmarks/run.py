"""Benchmarks: microgradnn against micrograd (PyPI) and a hand-written numpy MLP, same run.

    python3 benchmarks/run.py            # full run (about a minute)
    python3 benchmarks/run.py --quick    # fewer repeats, smaller graphs

Every figure is the median of several repeats; ratios are reference time / our time.
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import threading
import time
import tracemalloc

import microgradnn as mg

SIZES = [2, 16, 16, 1]


def median_time(fn, repeats: int, gc_on: bool) -> float:
    """Median wall time of fn() in seconds, with the cyclic collector on or off."""
    times = []
    for _ in range(repeats):
        gc.collect()
        (gc.enable if gc_on else gc.disable)()
        try:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        finally:
            gc.enable()
    return statistics.median(times)


def random_weights(seed: int = 0):
    rng = random.Random(seed)
    return [[([rng.uniform(-1, 1) for _ in range(SIZES[i])], rng.uniform(-0.1, 0.1))
             for _ in range(SIZES[i + 1])] for i in range(len(SIZES) - 1)]


def unfused_forward(params, x):
    """micrograd's Neuron: sum((wi * xi ...), b), relu on hidden layers."""
    for i, layer in enumerate(params):
        x = [(lambda a: a.relu() if i < len(params) - 1 else a)(sum((wi * xi for wi, xi in zip(w, x)), b))
             for w, b in layer]
    return x[0]


def fused_forward(params, x):
    for i, layer in enumerate(params):
        x = [(lambda a: a.relu() if i < len(params) - 1 else a)(mg.dot(w, x, b)) for w, b in layer]
    return x[0]


def as_values(Value, weights):
    return [[([Value(v) for v in w], Value(b)) for w, b in layer] for layer in weights]


def samples(n: int, seed: int = 1):
    rng = random.Random(seed)
    return [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(n)]


def mlp_times(Value, forward, n: int, repeats: int, gc_on: bool) -> tuple[float, float]:
    """Per-sample forward and backward time with n graphs alive at once."""
    params = as_values(Value, random_weights())
    xs = samples(n)
    fwd, bwd = [], []
    for _ in range(repeats):
        gc.collect()
        (gc.enable if gc_on else gc.disable)()
        try:
            t0 = time.perf_counter()
            outs = [forward(params, x) for x in xs]
            t1 = time.perf_counter()
            for o in outs:
                o.backward()
            t2 = time.perf_counter()
        finally:
            gc.enable()
        fwd.append((t1 - t0) / n)
        bwd.append((t2 - t1) / n)
        del outs
    return statistics.median(fwd), statistics.median(bwd)


def count_nodes(root) -> int:
    seen, stack = {id(root)}, [root]
    while stack:
        v = stack.pop()
        for c in getattr(v, "inputs", None) or getattr(v, "_prev", ()):
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return len(seen)


def bytes_per_node(Value, forward) -> float:
    params = as_values(Value, random_weights())
    x = samples(1)[0]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    out = forward(params, x)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / (count_nodes(out) - sum(len(w) + 1 for layer in params for w, _ in layer))


def chain(Value, n: int):
    def run():
        x = Value(1.0)
        y = x
        for _ in range(n):
            y = y * 1.0000001 + 0.001
        t0 = time.perf_counter()
        y.backward()
        return time.perf_counter() - t0
    return run


def in_big_stack(fn):
    """Run fn in a thread with a large stack: micrograd's topological sort is recursive."""
    result = []
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000_000)
    threading.stack_size(1 << 29)
    t = threading.Thread(target=lambda: result.append(fn()))
    t.start()
    t.join()
    threading.stack_size(0)
    sys.setrecursionlimit(old)
    return result[0]


def engine_section(args) -> list[tuple]:
    from micrograd.engine import Value as MicroValue
    rows = []
    n, reps = (30, 3) if args.quick else (100, 7)
    for gc_on in (True, False):
        mf, mb = mlp_times(MicroValue, unfused_forward, n, reps, gc_on)
        for name, fwd in (("unfused", unfused_forward), ("fused dot", fused_forward)):
            f, b = mlp_times(mg.Value, fwd, n, reps, gc_on)
            rows.append((f"MLP 2-16-16-1 {name}, gc {'on' if gc_on else 'off'}",
                         f"{(f + b) * 1e3:.3f} ms", f"{(mf + mb) * 1e3:.3f} ms", (mf + mb) / (f + b)))
    ours = bytes_per_node(mg.Value, unfused_forward)
    theirs = bytes_per_node(MicroValue, unfused_forward)
    rows.append(("bytes per node (unfused MLP graph)", f"{ours:.0f} B", f"{theirs:.0f} B", theirs / ours))
    length = 20_000 if args.quick else 100_000
    for label, Value in (("ours", mg.Value), ("micrograd", MicroValue)):
        t0 = time.perf_counter()
        back = in_big_stack(chain(Value, length)) if label == "micrograd" else chain(Value, length)()
        total = time.perf_counter() - t0
        if label == "ours":
            ours_chain = (total - back, back)
        else:
            theirs_chain = (total - back, back)
    per = 2 * length
    rows.append((f"chain of {per:,} nodes: forward us/node", f"{ours_chain[0] / per * 1e6:.3f}",
                 f"{theirs_chain[0] / per * 1e6:.3f}", theirs_chain[0] / ours_chain[0]))
    rows.append((f"chain of {per:,} nodes: backward us/node", f"{ours_chain[1] / per * 1e6:.3f}",
                 f"{theirs_chain[1] / per * 1e6:.3f}", theirs_chain[1] / ours_chain[1]))
    return rows


def print_table(title: str, header: tuple, rows: list[tuple]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        cells = [f"{c:.1f}x" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller graphs")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, microgradnn {mg.__version__}; medians of repeats")
    print_table("Scalar engine, forward + backward per sample (100 graphs alive)",
                ("case", "microgradnn", "micrograd", "speed-up"), engine_section(args))


if __name__ == "__main__":
    main()
