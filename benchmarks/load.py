"""Model files: load time and peak memory for 1e3, 1e4, 1e5 parameters (should grow linearly),
and a 123-byte file whose config claims a 3000x3000 layer (refused before anything is built).

    python3 benchmarks/load.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import microgradnn as mg  # noqa: E402


def main() -> None:
    folder = tempfile.mkdtemp()
    print("| parameters | file | load time | peak memory |\n|---|---|---|---|")
    for nin in (99, 999, 9999):
        model = mg.Layer(nin, 10, "linear", seed=0)
        path = os.path.join(folder, f"layer-{nin}.json")
        model.save(path)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            mg.Module.from_file(path)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        mg.Module.from_file(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"| {model.num_parameters():,} | {os.path.getsize(path) / 1e6:.2f} MB | {min(times) * 1e3:.1f} ms "
              f"| {peak / 1e6:.1f} MB |")
    path = os.path.join(folder, "claims-3000x3000.json")
    with open(path, "w") as f:
        f.write('{"format":"microgradnn-model","version":1,"config":{"type":"Layer","nin":3000,'
                '"nout":3000,"activation":"relu"},"state":{}}\n')
    t0 = time.perf_counter()
    try:
        mg.Module.from_file(path)
    except ValueError as e:
        print(f"\n{os.path.getsize(path)}-byte file refused in {(time.perf_counter() - t0) * 1e3:.2f} ms: {e}")


if __name__ == "__main__":
    main()
