"""Variadic ops: softmax / logsumexp over n inputs, forward, backward and grad(create_graph=True);
time per input should stay flat as n grows (it grew linearly with n when each input's rule
was called with all n inputs).

    python3 benchmarks/variadic.py
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import microgradnn as mg  # noqa: E402
from microgradnn import losses  # noqa: E402


def main() -> None:
    print("| inputs | softmax | logsumexp + backward | grad(create_graph=True) | us per input |\n|---|---|---|---|---|")
    for n in (1250, 5000, 20000):
        xs = [mg.Value(float(i % 7)) for i in range(n)]
        t0 = time.perf_counter()
        losses.softmax(xs)
        t1 = time.perf_counter()
        out = mg.logsumexp(xs)
        out.backward()
        t2 = time.perf_counter()
        mg.grad(out, xs[:3], create_graph=True)
        t3 = time.perf_counter()
        print(f"| {n:,} | {(t1 - t0) * 1e3:.1f} ms | {(t2 - t1) * 1e3:.1f} ms | {(t3 - t2) * 1e3:.1f} ms "
              f"| {(t3 - t0) / n * 1e6:.1f} |")


if __name__ == "__main__":
    main()
