"""Benchmarks: microgradnn against micrograd (PyPI), a hand-written numpy MLP and PyTorch, same run.

    python3 benchmarks/run.py            # full run (about a minute)
    python3 benchmarks/run.py --quick    # fewer repeats, smaller graphs
    python3 benchmarks/run.py --cpu      # CPU time (this process and Graphviz's) instead of wall time (a busy machine)

Every figure is the median of several repeats; ratios are reference time / our time.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import random
import re
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import microgradnn as mg

SIZES = [2, 16, 16, 1]
clock = time.perf_counter  # --cpu: cpu_time


def cpu_time() -> float:
    """CPU seconds used by this process and by the children it waited for (Graphviz's dot;
    counted in clock ticks, 10 ms, so only the rendering rows need them)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def median_time(fn, repeats: int, gc_on: bool, inner: int = 1) -> float:
    """Median over `repeats` of the mean wall time of `inner` calls of fn(), in seconds,
    with the cyclic collector on or off (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        (gc.enable if gc_on else gc.disable)()
        try:
            t0 = clock()
            for _ in range(inner):
                fn()
            times.append((clock() - t0) / inner)
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
            t0 = clock()
            outs = [forward(params, x) for x in xs]
            t1 = clock()
            for o in outs:
                o.backward()
            t2 = clock()
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


def bytes_per_node(Value, forward) -> tuple[float, float]:
    """Memory per node of one forward graph: (bytes asked for, bytes taken). Python's small-object
    allocator hands out blocks in steps of 16 bytes, so an object asking for 104 takes 112."""
    params = as_values(Value, random_weights())
    x = samples(1)[0]
    gc.collect()
    tracemalloc.start()
    out = forward(params, x)
    sizes = [trace.size for trace in tracemalloc.take_snapshot().traces]
    tracemalloc.stop()
    nodes = count_nodes(out) - sum(len(w) + 1 for layer in params for w, _ in layer)
    return sum(sizes) / nodes, sum(-(-size // 16) * 16 for size in sizes) / nodes


def chain(Value, n: int):
    """Build y = (y * 1.0000001) + 0.001 n times (2n + 1 nodes); time forward and backward."""
    def run():
        gc.disable()
        try:
            t0 = clock()
            y = x = Value(1.0)
            for _ in range(n):
                y = y * 1.0000001 + 0.001
            t1 = clock()
            y.backward()
            t2 = clock()
        finally:
            gc.enable()
        assert x.grad > 0
        return t1 - t0, t2 - t1
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


def whole_idea_value():
    """The Value of demos/09_the_whole_idea.py, the 50-line engine: a yardstick for the op table's cost."""
    path = Path(__file__).resolve().parent.parent / "demos" / "09_the_whole_idea.py"
    spec = importlib.util.spec_from_file_location("the_whole_idea", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Value


def engine_section(args) -> list[tuple]:
    from micrograd.engine import Value as MicroValue
    rows = []
    n, reps = (30, 3) if args.quick else (100, 7)
    for gc_on in (True, False):
        mf, mb = mlp_times(MicroValue, unfused_forward, n, reps, gc_on)
        for name, fwd in (("unfused", unfused_forward), ("fused dot", fused_forward)):
            f, b = mlp_times(mg.Value, fwd, n, reps, gc_on)
            rows.append((f"MLP 2-16-16-1 {name}, gc {'on' if gc_on else 'off'}: forward + backward",
                         f"{(f + b) * 1e3:.3f} ms", f"{(mf + mb) * 1e3:.3f} ms", (mf + mb) / (f + b)))
        if not gc_on:
            f, b = mlp_times(whole_idea_value(), unfused_forward, n, reps, gc_on)
            rows.append(("MLP 2-16-16-1 unfused on demos/09_the_whole_idea.py (ops hand-written, no op table, "
                         "no checks), gc off", f"{(f + b) * 1e3:.3f} ms", f"{(mf + mb) * 1e3:.3f} ms",
                         (mf + mb) / (f + b)))
    ours = bytes_per_node(mg.Value, unfused_forward)
    theirs = bytes_per_node(MicroValue, unfused_forward)
    for i, kind in enumerate(("asked for", "taken, in the allocator's 16-byte blocks")):
        rows.append((f"bytes per node (unfused MLP graph), {kind}", f"{ours[i]:.0f} B", f"{theirs[i]:.0f} B",
                     theirs[i] / ours[i]))
    length = 20_000 if args.quick else 50_000
    ours_chain = chain(mg.Value, length)()
    theirs_chain = in_big_stack(chain(MicroValue, length))
    nodes = 2 * length + 1
    for i, phase in enumerate(("forward", "backward")):
        rows.append((f"chain of {nodes:,} nodes: {phase}, us per node", f"{ours_chain[i] / nodes * 1e6:.3f}",
                     f"{theirs_chain[i] / nodes * 1e6:.3f}", theirs_chain[i] / ours_chain[i]))
    million = chain(mg.Value, 500_000)()
    rows.append(("chain of 1,000,001 nodes: forward + backward", f"{sum(million):.2f} s", "(recursion limit)", "-"))
    return rows


# ---- one training step: moons, 100 samples, 2-16-16-1, hinge loss, full batch, SGD ---------

def moons_problem():
    X, y = mg.data.make_moons(100, noise=0.1, seed=0)
    return X, (2 * y - 1).astype(float)


def micrograd_step_fn(weights):
    from micrograd.nn import MLP as MicroMLP
    model = MicroMLP(2, [16, 16, 1])
    for layer, given in zip(model.layers, weights):
        for neuron, (w, b) in zip(layer.neurons, given):
            for p, v in zip(neuron.w, w):
                p.data = v
            neuron.b.data = b
    X, t = moons_problem()
    rows = [list(map(float, x)) for x in X]

    def step():
        scores = [model(x) for x in rows]
        losses = [(1 + -ti * si).relu() for ti, si in zip(t, scores)]
        loss = sum(losses) * (1.0 / len(losses))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.01 * p.grad
    return step


def our_model(weights):
    return mg.MLP.from_layers([mg.Layer.from_weights(layer, "relu" if i < 2 else "linear")
                               for i, layer in enumerate(weights)])


def scalar_step_fn(weights):
    model = our_model(weights)
    X, t = moons_problem()
    opt = mg.optim.SGD(model.parameters(), lr=0.01)

    def step():
        loss = mg.losses.hinge([model(x) for x in X], t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def replay_step_fn(weights):
    model = our_model(weights)
    X, t = moons_problem()
    opt = mg.optim.SGD(model.parameters(), lr=0.01)
    compiled = mg.compile(lambda x, target: mg.losses.hinge([model(x)], [target]))

    def step():
        result = compiled(X, t)
        opt.zero_grad()
        result.backward()
        opt.step()
    return step


def numpy_step_fn(weights):
    """The same network and update written directly in numpy: the practical limit."""
    import numpy as np
    W = [np.array([w for w, _ in layer]) for layer in weights]
    B = [np.array([b for _, b in layer]) for layer in weights]
    X, t = moons_problem()

    def step():
        h1 = np.maximum(X @ W[0].T + B[0], 0)
        h2 = np.maximum(h1 @ W[1].T + B[1], 0)
        s = (h2 @ W[2].T + B[2])[:, 0]
        margin = 1 - t * s
        ds = np.where(margin > 0, -t, 0.0)[:, None] / len(t)
        dW2, dB2 = ds.T @ h2, ds.sum(0)
        dh2 = (ds @ W[2]) * (h2 > 0)
        dW1, dB1 = dh2.T @ h1, dh2.sum(0)
        dh1 = (dh2 @ W[1]) * (h1 > 0)
        dW0, dB0 = dh1.T @ X, dh1.sum(0)
        for P, G in zip(W + B, (dW0, dW1, dW2, dB0, dB1, dB2)):
            P -= 0.01 * G
    return step


def training_section(args) -> list[tuple]:
    reps = 3 if args.quick else 7
    weights = random_weights()
    rows = []
    for gc_on in (True, False):
        times = {name: median_time(make(weights), reps, gc_on, inner) for name, make, inner in (
            ("micrograd", micrograd_step_fn, 1), ("scalar", scalar_step_fn, 1), ("replay", replay_step_fn, 50),
            ("numpy", numpy_step_fn, 50))}
        label = f"gc {'on' if gc_on else 'off'}"
        rows.append((f"micrograd scalar step, {label}", f"{times['micrograd'] * 1e3:.2f} ms", "1.0x", "-"))
        for name in ("scalar", "replay"):
            rows.append((f"microgradnn {'fused scalar' if name == 'scalar' else 'compiled replay'} step, {label}",
                         f"{times[name] * 1e3:.2f} ms", times["micrograd"] / times[name],
                         f"{times[name] / times['numpy']:.1f}x slower"))
        rows.append((f"hand-written numpy MLP step, {label}", f"{times['numpy'] * 1e3:.3f} ms",
                     times["micrograd"] / times["numpy"], "1.0x"))
    return rows


# ---- one GPT training step: 32 sequences of 17 tokens, n_embd 16, 4 heads, 1 layer, Adam ----------

def gpt_problem(seed: int = 0):
    import numpy as np
    from microgradnn.models import GPT
    model = GPT(27, n_embd=16, n_head=4, n_layer=1, block_size=16, seed=seed)
    rng = np.random.default_rng(seed)
    batch = [[0] + [int(t) for t in rng.integers(1, 27, size=15)] + [0] for _ in range(32)]
    return model, batch


def gpt_scalar_step_fn():
    model, batch = gpt_problem()
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        total = model.loss(batch[0])
        for tokens in batch[1:]:
            total = total + model.loss(tokens)
        loss = total / len(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def gpt_compiled_step_fn():
    model, batch = gpt_problem()
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    compiled = mg.compile(model.loss)

    def step():
        result = compiled(batch)
        opt.zero_grad()
        result.backward()
        opt.step()
    return step


def gpt_torch_step_fn(dtype: str):
    import torch
    torch.set_num_threads(1)
    model, batch = gpt_problem()
    module = model.to_torch().to(getattr(torch, dtype))
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    idx = torch.tensor(batch)

    def step():
        loss = module.loss(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def gpt_section(args) -> list[tuple]:
    reps = 3 if args.quick else 5
    scalar = median_time(gpt_scalar_step_fn(), 1 if args.quick else 3, gc_on=True)
    compiled = median_time(gpt_compiled_step_fn(), reps, gc_on=True, inner=5 if args.quick else 20)
    rows = [("microgradnn scalar engine (fused), gc on", f"{scalar * 1e3:.0f} ms", "1.0x", "-"),
            ("microgradnn compiled replay", f"{compiled * 1e3:.1f} ms", scalar / compiled, "-")]
    try:
        import torch  # noqa: F401
    except ImportError:
        return rows + [("PyTorch eager", "(not installed: pip install torch)", "-", "-")]
    for dtype in ("float64", "float32"):
        t = median_time(gpt_torch_step_fn(dtype), reps, gc_on=True, inner=5 if args.quick else 20)
        rows.append((f"PyTorch {torch.__version__} eager CPU {dtype}, 1 thread", f"{t * 1e3:.1f} ms", scalar / t,
                     f"compiled is {compiled / t:.2f}x its time"))
    return rows


def rendering_section(args) -> list[tuple]:
    from microgradnn import viz
    model = our_model(random_weights())
    out = model([0.5, -1.0])
    out.backward()
    reps = 2 if args.quick else 3
    rows = []
    for name, kwargs in (("backward graph, every node", {}), ("backward graph, collapse=True", {"collapse": True})):
        def render(kwargs=kwargs):
            viz.draw_graph(out, view="backward", **kwargs).pipe(format="svg")
        nodes = len(re.findall(r"^\s*v\d+ \[", viz.draw_graph(out, view="backward", **kwargs).source, re.M))
        seconds = median_time(render, reps, gc_on=True)
        rows.append((f"2-16-16-1 MLP {name} ({nodes} value nodes) to SVG", f"{seconds:.2f} s"))
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
    parser.add_argument("--cpu", action="store_true", help="time CPU use (this process and Graphviz's), not wall time "
                        "(steadier when other programs share the cores)")
    args = parser.parse_args()
    global clock
    clock = cpu_time if args.cpu else time.perf_counter
    print(f"Python {sys.version.split()[0]}, microgradnn {mg.__version__}; medians of repeats, "
          f"{'CPU' if args.cpu else 'wall'} time")
    print_table("Scalar engine, one sample of a 2-16-16-1 ReLU MLP (100 graphs alive), and long chains",
                ("case", "microgradnn", "micrograd", "speed-up"), engine_section(args))
    print_table("One training step: moons, 100 samples, 2-16-16-1, hinge loss, full batch, SGD",
                ("case", "time per step", "speed-up vs micrograd", "vs numpy"), training_section(args))
    print_table("One GPT training step: 32 sequences of 17 tokens, vocab 27, n_embd 16, 4 heads, 1 layer, "
                "block 16, Adam", ("case", "time per step", "speed-up vs scalar", "compiled vs PyTorch"),
                gpt_section(args))
    print_table("Rendering with Graphviz", ("case", "time"), rendering_section(args))


if __name__ == "__main__":
    main()
