import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import microgradnn as mg
from microgradnn import MLP, Value, viz
from conftest import CHROMIUM, needs_chromium, needs_dot

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(svg: str) -> tuple[dict, dict, list]:
    """Node id -> its texts, edge title -> its texts, and cluster titles, read from SVG."""
    root = ET.fromstring(svg)
    nodes, edges, clusters = {}, {}, []
    for g in root.iter(f"{SVG}g"):
        cls = g.get("class")
        title = g.find(f"{SVG}title").text if g.find(f"{SVG}title") is not None else None
        texts = [t.text for t in g.iter(f"{SVG}text")]
        if cls == "node":
            nodes[title] = texts
        elif cls == "edge":
            edges[title] = texts
        elif cls == "cluster":
            clusters.append(texts[0] if texts else "")
    return nodes, edges, clusters


def dot_nodes(source: str) -> dict:
    """DOT node id -> its label, read from the source."""
    return dict(re.findall(r"^\s*(\w+) \[label=(.*?) (?:fillcolor|id)=", source, re.M))


@needs_dot
def test_backward_view_shows_every_value_grad_and_local_derivative(neuron_graph):
    o = neuron_graph
    g = viz.draw_graph(o, view="backward")
    nodes, edges, _ = parse_svg(g.pipe(format="svg", encoding="utf-8"))
    order = mg.topological_order(o)
    ids = {id(v): f"v{i}" for i, v in enumerate(order)}
    for v in order:
        texts = nodes[ids[id(v)]]
        assert f"data {viz.fmt(v.data)}" in texts and f"grad {viz.fmt(v.grad)}" in texts
        if v.label:
            assert texts[0] == v.label
        if v.inputs:
            op = f"op{ids[id(v)][1:]}"
            assert nodes[op] == [{"tanh": "tanh"}.get(v.op, v.op)]
            assert f"{op}->{ids[id(v)]}" in edges
            for x, local in zip(v.inputs, mg.grad(v, v.inputs)):  # inputs are distinct here
                assert edges[f"{ids[id(x)]}->{op}"] == [f"×{viz.fmt(local)}"]
    n_edges = sum(len(v.inputs) + 1 for v in order if v.inputs)
    assert len(edges) == n_edges


@needs_dot
def test_forward_view_has_no_grads_and_edges_match_inputs(neuron_graph):
    o = neuron_graph
    nodes, edges, _ = parse_svg(viz.draw_graph(o, view="forward").pipe(format="svg", encoding="utf-8"))
    assert not any(t.startswith("grad") for texts in nodes.values() for t in texts)
    assert all(texts == [] for texts in edges.values())
    order = mg.topological_order(o)
    ids = {id(v): f"v{i}" for i, v in enumerate(order)}
    expected = {f"{ids[id(x)]}->op{ids[id(v)][1:]}" for v in order for x in v.inputs}
    expected |= {f"op{ids[id(v)][1:]}->{ids[id(v)]}" for v in order if v.inputs}
    assert set(edges) == expected


def test_constants_are_folded_into_their_op_unless_asked():
    x = Value(3.0, label="x")
    y = (2 * x - 1) / 4
    src = viz.draw_graph(y).source
    labels = dot_nodes(src)
    assert [labels[k] for k in sorted(k for k in labels if k.startswith("op"))] == ["<2 *>", "<- 1>", "</ 4>"]
    assert sum(1 for k in labels if k.startswith("v")) == 4  # x and three results, no constants
    shown = dot_nodes(viz.draw_graph(y, show_constants=True).source)
    assert sum(1 for k in shown if k.startswith("v")) == 7
    assert "<1 ->" in dot_nodes(viz.draw_graph(1 - x).source).values()


def test_constants_of_ops_over_any_number_of_inputs_are_listed_below_the_op():
    x = Value(3.0, label="x")
    for y, constants in [(mg.dot([x, Value(1.0, label="w")], [3.0, 4.0], 0.5), "3, 4, 0.5"),
                         (mg.logsumexp([x, 2.0]), "2")]:
        labels = dot_nodes(viz.draw_graph(y).source)
        (op,) = [label for key, label in labels.items() if key.startswith("op")]
        assert op == f"<{mg.get_op(y.op).symbol}<BR/>(constants {constants})>"


def test_node_kinds_look_different_and_gradient_colouring():
    m = MLP(2, [2, 1], seed=0)
    out = m([0.5, -1.0])
    out.backward()
    src = viz.draw_graph(out, view="both").source
    assert src.count('BGCOLOR="#FFE8B0"') == 9  # parameters
    assert src.count('BGCOLOR="#D6EAF8"') == 2  # inputs x0, x1
    assert src.count('BGCOLOR="#D5F5E3"') == 1  # output
    colored = viz.draw_graph(out, view="both", color_by_grad=True).source
    assert re.findall(r'BGCOLOR="(#[0-9A-F]{6})"', colored) and 'BGCOLOR="#FFE8B0"' not in colored
    x, y, w = Value(2.0, label="x"), Value(-1.0, label="y"), Value(0.5, label="w")
    z = x * y + w * 0.0  # grads: y 2 (the largest: deepest red), x -1 (blue), w 0 (white)
    z.backward()
    shaded = viz.draw_graph(z, view="both", color_by_grad=True).source
    fill = {label: color for color, label in re.findall(r'BGCOLOR="(#[0-9A-F]{6})"><TR><TD ID="v\d+_label"[^>]*>(\w)<', shaded)}
    assert fill == {"y": "#FF6969", "x": "#9595FF", "w": "#FFFFFF"}
    assert not re.search(r'"#[0-9A-Fa-f]{3}"', src)  # never 3-digit colours


@needs_dot
def test_mlp_graph_has_one_cluster_per_neuron_and_layer():
    m = MLP(2, [3, 2, 1], seed=0)
    out = m([0.5, -1.0])
    out.backward()
    _, _, clusters = parse_svg(viz.draw_graph(out, view="both").pipe(format="svg", encoding="utf-8"))
    neurons = [c for c in clusters if ".neurons." in c]
    assert sorted(neurons) == sorted(n for n, mod in m.named_modules() if ".neurons." in n)
    assert sorted(c for c in clusters if ".neurons." not in c) == ["layers.0", "layers.1", "layers.2"]


@needs_dot
def test_full_mlp_renders_and_collapse_gives_one_node_per_neuron():
    m = MLP(2, [16, 16, 1], seed=0)
    out = m([0.5, -1.0])
    out.backward()
    for view in ("forward", "backward"):
        nodes, _, _ = parse_svg(viz.draw_graph(out, view=view).pipe(format="svg", encoding="utf-8"))
        assert len(nodes) > 400
    nodes, edges, _ = parse_svg(viz.draw_graph(out, view="backward", collapse=True).pipe(format="svg", encoding="utf-8"))
    assert len(nodes) == 2 + 16 + 16 + 1
    assert sum(1 for texts in nodes.values() if ".neurons." in texts[0]) == 33
    assert len(edges) == 2 * 16 + 16 * 16 + 16


def test_too_many_nodes_stops_with_advice():
    x = Value(0.5)
    y = x
    for _ in range(600):
        y = y * 1.01
    with pytest.raises(viz.GraphTooLarge, match=r"1201 nodes to draw, more than max_nodes=1000; pass collapse=True"):
        viz.draw_graph(y, max_nodes=1000)


DETERMINISM = """
import microgradnn as mg
from microgradnn import viz
m = mg.MLP(2, [3, 1], output_activation="tanh", seed=0)
out = m([0.5, -1.0]) * 2 + mg.Value(0.25, label="c")
out.backward()
print(viz.draw_graph(out, view="both").source)
print(viz.draw_graph(out, view="both", collapse=True).source)
print(viz.draw_network(m, [0.5, -1.0]).source)
"""


def test_dot_source_is_the_same_in_every_process():
    def run(seed):
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        done = subprocess.run([sys.executable, "-c", DETERMINISM], capture_output=True, text=True, env=env,
                              timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert done.returncode == 0, done.stderr
        return done.stdout
    first, second = run(1), run(2)
    assert first == second and first.count("digraph") == 3 and "cluster_" in first


def test_clusters_follow_the_modules_that_made_the_nodes():
    layer = mg.Layer(2, 2, "tanh", seed=0, fused=False)
    x = [Value(0.5, label="a") * 3, Value(-1.0, label="b")]  # a node made outside any module
    out = layer(x)[1] * 2
    src = viz.draw_graph(out).source
    clusters = re.findall(r"subgraph cluster_\d+ \{\s*graph \[[^\]]*label=<([^>]*)>", src)
    assert sorted(clusters) == ["layer", "neurons.1"]
    outside = src[:src.index("subgraph")]  # nodes made outside the layer stay outside its clusters
    assert re.search(r"op\d+ \[label=<\* 3>", outside) and re.search(r"op\d+ \[label=<\* 2>", outside)
    inner = src[src.index("subgraph"):]  # the neuron's own ops, and only those, are inside
    assert inner.count("label=<*>") == 2 and inner.count("label=<+>") == 2 and inner.count("label=<tanh>") == 1


@needs_dot
def test_labels_are_escaped_and_cannot_inject(tmp_path):
    nasty = 'a<b>"c"{d}|e\\N\nf ] [color="#FF0000"'
    x = Value(1.0, label=nasty)
    y = x * 2
    y.backward()
    nodes, _, _ = parse_svg(viz.draw_graph(y, view="both").pipe(format="svg", encoding="utf-8"))
    assert nodes["v0"][:2] == ['a<b>"c"{d}|e\\N', 'f ] [color="#FF0000"']
    evil_op = mg.define_op('ev"il\\N<op>', lambda a: a, lambda a, out: 1.0)
    nodes, _, _ = parse_svg(viz.draw_graph(evil_op(x)).pipe(format="svg", encoding="utf-8"))
    assert nodes["op1"] == ['ev"il\\N<op>']


@needs_dot
@pytest.mark.parametrize("ext, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph")])
def test_save_picks_format_by_extension(neuron_graph, tmp_path, ext, magic):
    o = neuron_graph
    for obj in (o, viz.draw_graph(o), MLP(2, [2, 1], seed=0)):
        path = tmp_path / f"{type(obj).__name__}{ext}"
        viz.save(obj, path)
        assert path.read_bytes().startswith(magic)


def test_save_refuses_unknown_extensions_and_overwrites(neuron_graph, tmp_path):
    o = neuron_graph
    with pytest.raises(ValueError, match=r"unknown extension '.jpg'"):
        viz.save(o, tmp_path / "a.jpg")
    viz.save(o, tmp_path / "a.dot")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        viz.save(o, tmp_path / "a.dot")
    with pytest.raises(TypeError, match="expected a Digraph, a Value or a Module"):
        viz.save(3.0, tmp_path / "b.dot")


def test_without_dot_sources_work_and_rendering_explains_install(neuron_graph, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    o = neuron_graph
    viz.save(o, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    for call in (lambda: viz.save(o, tmp_path / "g.svg"), lambda: viz.draw_graph(o).pipe(format="svg"),
                 lambda: viz.draw_network(MLP(2, [2, 1], seed=0)).render(tmp_path / "n", format="png")):
        with pytest.raises(viz.GraphvizNotFound) as info:
            call()
        assert "apt-get install graphviz" in str(info.value) and "brew install graphviz" in str(info.value)
        assert "conda install graphviz" in str(info.value)
    assert not (tmp_path / "g.svg").exists()
    assert viz.mimebundle(o) == {"text/plain": repr(o)}  # never raises in a notebook
    assert set(viz.draw_graph(o)._repr_mimebundle_()) == {"text/plain"}


@needs_dot
def test_notebook_shows_values_and_modules_as_svg_when_small(neuron_graph):
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell", reason="IPython is not installed")
    shell = interactiveshell.InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "microgradnn")  # what a notebook gets on `import microgradnn`
        o = neuron_graph
        bundle, _ = shell.display_formatter.format(o)
        assert bundle["text/plain"] == repr(o) and bundle["image/svg+xml"].lstrip().startswith("<?xml")
        assert "image/svg+xml" in shell.display_formatter.format(MLP(2, [3, 1], seed=0))[0]
        big = MLP(2, [16, 16, 1], seed=0)([0.1, 0.2])
        assert "image/svg+xml" not in shell.display_formatter.format(big)[0]  # too big to draw inline
    finally:
        interactiveshell.InteractiveShell.clear_instance()
    assert not viz.register()  # outside a shell there is nothing to register with
    assert viz.draw_graph(o)._repr_mimebundle_()["image/svg+xml"].startswith("<?xml")


@needs_dot
def test_draw_network_encodes_weights_and_activations():
    m = MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)]),
                         mg.Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])
    g = viz.draw_network(m, [1.0, 0.5])
    src = g.source
    nodes, edges, _ = parse_svg(g.pipe(format="svg", encoding="utf-8"))
    assert nodes["L1N0"] == ["0.4"] and nodes["L1N1"] == ["0.3"] and nodes["L1N2"] == ["0.05"]
    assert nodes["prediction"] == ["prediction", "0.6399"]
    widths = dict(re.findall(r'(L\dN\d -> L\dN\d) \[color="#[0-9A-F]{6}" id=\S+ penwidth=([\d.]+)', src))
    assert float(widths["L1N0 -> L2N0"]) > float(widths["L1N1 -> L2N0"])  # |0.7| > |0.4|
    assert re.search(r'L0N1 -> L1N0 \[color="#C0392B"', src) and re.search(r'L0N0 -> L1N0 \[color="#2E86C1"', src)
    assert len([e for e in edges if "prediction" not in e]) == 2 * 3 + 3


@needs_dot
def test_record_writes_one_forward_and_one_backward_file_per_step(tmp_path):
    X, y = mg.data.make_moons(8, seed=0)
    model = MLP(2, [3, 1], seed=0)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    with viz.record(tmp_path / "frames", model) as written:
        for _ in range(3):
            loss = mg.losses.hinge([model(x) for x in X[:2]], y[:2] * 2 - 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    names = sorted(os.listdir(tmp_path / "frames"))
    assert names == [f"step-000{i}-{v}.svg" for i in (1, 2, 3) for v in ("backward", "forward")]
    assert len(written) == 6
    first, second = (parse_svg((tmp_path / "frames" / f"step-000{i}-backward.svg").read_text()) for i in (1, 2))
    assert first[0].keys() == second[0].keys() and first[0] != second[0]  # same nodes, new numbers
    mg.losses.hinge([model(x) for x in X[:2]], y[:2] * 2 - 1).backward()  # outside the block: nothing more is written
    assert len(os.listdir(tmp_path / "frames")) == 6


@needs_dot
def test_record_every_nth_step_format_and_shared_layout(tmp_path):
    x = Value(0.5, label="x")
    with viz.record(tmp_path, every=2, format="svg"):
        for k in range(5):
            ((x * (k + 1.5)).tanh() * x).backward()
    assert sorted(os.listdir(tmp_path)) == [f"step-000{i}-{v}.svg" for i in (1, 3, 5) for v in ("backward", "forward")]

    def positions(name):
        root = ET.parse(tmp_path / name).getroot()
        return [(g.find(f"{SVG}title").text, [p.get("points") for p in g.iter(f"{SVG}polygon")])
                for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert positions("step-0001-backward.svg") == positions("step-0005-backward.svg")
    with pytest.raises(FileExistsError, match="already holds step-"):
        with viz.record(tmp_path):
            pass


# ---- the animation, in a real headless browser ---------------------------------------------

def chromium_dom(url: str, tmp_path) -> tuple[str, str]:
    exe = CHROMIUM
    profile = tmp_path / "profile"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@needs_chromium
def test_console_error_detector_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, stderr = chromium_dom(page.as_uri(), tmp_path)
    assert console_errors(stderr)


@needs_dot
@needs_chromium
def test_animation_steps_offline_and_shows_the_engines_numbers(neuron_graph, tmp_path):
    o = neuron_graph
    page = tmp_path / "anim.html"
    viz.animate(o, page)
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) and "@import" not in text
    steps = viz.animation_steps(o)
    order = mg.topological_order(o)  # every node is drawn: the graph has no folded constants
    seen = []
    for k in (0, 1, 4, 5, len(steps)):
        dom, stderr = chromium_dom(f"{page.as_uri()}#step={k}", tmp_path)
        assert not console_errors(stderr), console_errors(stderr)
        body = re.search(r"<body[^>]*>", dom).group(0)
        assert f'data-step="{k}"' in body
        active = re.findall(r'<g id="(v\d+)" class="node active">', dom)
        seen.append(active)
        if k == 0:
            assert active == [] and "data ?" in dom
            continue
        step = steps[k - 1]
        assert active == [step["id"]]
        node = order[int(step["id"][1:])]
        number = viz.fmt(node.data if step["kind"] == "data" else node.grad)
        node_svg = re.search(rf'<g id="{step["id"]}" class="node active">(.*?)</g>', dom, re.S).group(1)
        assert f"{step['kind']} {number}" in node_svg
    assert len({tuple(a) for a in seen}) == len(seen)  # stepping moves the highlight
    assert "grad ?" not in dom and "data ?" not in dom  # at the end every number is shown
    with pytest.raises(FileExistsError):
        viz.animate(o, page)


# ---- issue 15: size guards, hostile labels, record's hook --------------------------------------

def test_draw_network_refuses_a_huge_network_quickly_and_a_notebook_shows_text():
    model = MLP(2, [200, 200, 1], seed=0)
    with pytest.raises(viz.GraphTooLarge, match=r"40,600 weights .* more than max_elements=3,000"):
        viz.draw_network(model)
    bundle = viz.notebook.mimebundle(model)
    assert list(bundle) == ["text/plain"] and bundle["text/plain"].startswith("MLP(2 -> 200 relu")
    assert viz.draw_network(MLP(2, [20, 1], seed=0), max_elements=100_000).source.count("->") == 60


@needs_dot
def test_labels_with_characters_xml_forbids_are_drawn_visibly():
    x = Value(1.0, "a\x01b\x0bc\ud800")
    y = x * 2
    y.label = "y\x1f"
    y.backward()
    svg = viz.draw_graph(y, title="t\x02").pipe(format="svg", encoding="utf-8")
    texts = "".join(ET.fromstring(svg).itertext())
    assert "a\\x01b\\x0bc\\ud800" in texts and "y\\x1f" in texts and "t\\x02" in texts


@needs_dot
@pytest.mark.parametrize("label", ["</script><script>document.title='pwned'</script>", "<!--<script>", "]]>&amp;"])
def test_no_label_or_title_changes_how_the_animation_page_parses(tmp_path, label):
    x = Value(0.5, label)
    o = (x * 2.0).tanh()
    o.label = label + "\u2028"
    o.backward()
    page = tmp_path / "anim.html"
    viz.animate(o, page, title=label)
    dom, stderr = chromium_dom(f"{page.as_uri()}#step=2", tmp_path)
    assert not console_errors(stderr), console_errors(stderr)
    assert 'data-step="2"' in re.search(r"<body[^>]*>", dom).group(0)  # the script ran and stepped
    assert __import__("html").unescape(re.search(r"<title>(.*?)</title>", dom, re.S).group(1)) == label


@needs_dot
def test_record_survives_its_own_errors_and_ignores_other_threads(tmp_path):
    import threading
    x = Value(0.5, "x")
    with viz.record(tmp_path / "frames", max_nodes=1) as written:  # every drawing is too large
        with pytest.warns(RuntimeWarning, match="GraphTooLarge"):
            (x * x + x).backward()
    assert x.grad == 2.0 and written == []
    with viz.record(tmp_path / "mine") as written:
        done = []
        other = threading.Thread(target=lambda: done.append((Value(1.0) * 3).backward()))
        other.start()
        other.join()
        assert done == [None] and written == []  # another thread's backward is not recorded
        (x * 3).backward()
        assert len(written) == 2
