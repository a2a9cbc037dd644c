import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import MLP, Value, viz
from conftest import needs_dot

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


def test_an_op_of_two_constants_shows_both():
    # 2 * 3 computed from two plain numbers was labelled "2 *", hiding the 3
    x = Value(1.0, label="x")
    two, three = Value(2.0, requires_grad=False), Value(3.0, requires_grad=False)
    labels = dot_nodes(viz.draw_graph(two * three + x).source)
    assert sorted(label for key, label in labels.items() if key.startswith("op")) == ["<+>", "<2 * 3>"]


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
    x, y, w, u = Value(2.0, label="x"), Value(-1.0, label="y"), Value(0.5, label="w"), Value(3.0, label="u")
    z = x * y + w * 0.0 + u * 0.5  # grads: y 2 (the largest: deepest red), x -1 (blue), w 0 (white), u 0.5 (pale red)
    z.backward()
    shaded = viz.draw_graph(z, view="both", color_by_grad=True).source
    fill = {label: color for color, label in re.findall(r'BGCOLOR="(#[0-9A-F]{6})"><TR><TD ID="v\d+_label"[^>]*>(\w)<', shaded)}
    assert fill == {"y": "#FF6969", "x": "#9595FF", "w": "#FFFFFF", "u": "#FFB4B4"}  # depth: sqrt(|g| / 2)
    # a grad set by hand to inf turned every other white, as 0; NaN was white too
    for y.grad, shade in ((float("inf"), "#FF6969"), (float("nan"), "#BBBBBB")):
        shaded = viz.draw_graph(z, view="both", color_by_grad=True).source
        fill = {label: color for color, label in
                re.findall(r'BGCOLOR="(#[0-9A-F]{6})"><TR><TD ID="v\d+_label"[^>]*>(\w)<', shaded)}
        assert fill == {"y": shade, "x": "#6969FF", "w": "#FFFFFF", "u": "#FF9595"}  # depth: sqrt(|g| / 1)
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
    with pytest.raises(viz.GraphTooLarge, match=r"1201 nodes to draw, more than max_nodes=1000; pass a larger max_nodes"):
        viz.draw_graph(y, max_nodes=1000)


def test_too_many_nodes_advises_collapse_only_where_a_neuron_made_nodes():
    # a graph no neuron made was told to "pass collapse=True", which draws it the same and is refused the same
    y = Value(0.5)
    for _ in range(100):
        y = y * 1.01
    with pytest.raises(viz.GraphTooLarge) as caught:
        viz.draw_graph(y, max_nodes=10)
    assert "collapse" not in str(caught.value), caught.value
    out = MLP(2, [8, 1], seed=0)([1.0, 2.0])
    with pytest.raises(viz.GraphTooLarge, match=r"; pass collapse=True to draw each call of a neuron as one node, or a larger "
                                                r"max_nodes, as in viz\.draw_graph\(v, max_nodes=\d+\)"):
        viz.draw_graph(out, max_nodes=10)


def test_too_many_nodes_names_the_call_that_takes_a_larger_max_nodes(tmp_path):
    # was: "raise max_nodes=" without saying where, and animate was told to pass a collapse= it does not take
    y = Value(0.5)
    for _ in range(100):
        y = y * 1.01
    for call, message in (
            (lambda: viz.draw_graph(y, max_nodes=10), r"pass a larger max_nodes, as in viz\.draw_graph\(v, "
                                                      r"max_nodes=201\)"),
            (lambda: viz.animate(y, tmp_path / "a.html", max_nodes=10),
             r"pass a larger max_nodes, as in viz\.animate\(v, path, max_nodes=201\) \(dot"),
            (lambda: viz.animation_steps(y, max_nodes=10),
             r"pass a larger max_nodes, as in viz\.animation_steps\(v, max_nodes=201\) \(dot")):
        with pytest.raises(viz.GraphTooLarge, match=r"^the graph has 201 nodes to draw, more than max_nodes=10; "
                                                    + message) as caught:
            call()
        assert caught.value.nodes == 201


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
    with pytest.raises(TypeError, match=r"^save: a Module is drawn as a network only when it is an MLP, Layer or "
                                        r"Neuron, got Embedding; save the graph of its output"):
        viz.save(mg.nn.Embedding(5, 3), tmp_path / "e.dot")  # was: "draw_network: expected ...", not save
    with pytest.raises(IsADirectoryError, match=r"^save: .* is a folder; give a file name"):
        viz.save(o, tmp_path)  # was: "unknown extension '(none)'"


def test_animate_and_animate_network_write_pages_only_to_html_names(neuron_graph, tmp_path):
    # was: an HTML page written into p.svg, a file whose content is not what its name says
    net = MLP(2, [3, 1], seed=0)
    writers = {"animate": lambda path: viz.animate(neuron_graph, path),
               "animate_network": lambda path: viz.animate_network(net, [1.0, 0.5], path)}
    for who, write in writers.items():
        for name, ext in (("p.svg", "'.svg'"), ("p", "'(none)'"), ("p.html.png", "'.png'")):
            with pytest.raises(ValueError, match=rf"^{who}: unknown extension {re.escape(ext)} in .*{re.escape(name)}; "
                                                 rf"{who} writes an HTML page: use .html or .htm$"):
                write(tmp_path / name)
        with pytest.raises(IsADirectoryError, match=rf"^{who}: .* is a folder; give a file name"):
            write(tmp_path)
    assert list(tmp_path.iterdir()) == []


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
    assert viz.mimebundle(o) == {"text/plain": f"{o!r}\n(no picture: {viz.format.INSTALL_HINT})"}  # never raises
    source = viz.draw_network(MLP(2, [2], seed=0), [1.0, 2.0]).source  # the prediction box sized by an estimate
    width = float(re.search(r"\bprediction \[.*\bwidth=([\d.]+)", source).group(1))
    assert "class 0 (the largest of 2 outputs)" in source and width * 72 >= 6 * len("class 0 (the largest of 2 outputs)")
    drawing = viz.draw_graph(o)  # a drawing at the end of a cell showed its DOT source, and not why
    assert drawing._repr_mimebundle_() == {"text/plain": f"{drawing.source}\n(no picture: {viz.format.INSTALL_HINT})"}


@needs_dot
def test_notebook_draws_a_large_graph_collapsed_with_a_note():
    big = MLP(2, [16, 16, 1], seed=0)([0.1, 0.2])
    nodes, _, _ = parse_svg(viz.mimebundle(big)["image/svg+xml"])
    assert len(nodes) == 2 + 16 + 16 + 1  # the inputs and one node per neuron
    title = " ".join(t.text for t in ET.fromstring(viz.mimebundle(big)["image/svg+xml"]).find(f"{SVG}g").findall(f"{SVG}text"))
    assert title.startswith("collapsed: each call of a neuron is one node (") and "draws them all" in title
    full = int(re.search(r"max_nodes=(\d+)\) draws them all", title)[1])  # was: a guess, twice the values
    assert viz.draw_graph(big, view="both", max_nodes=full).source
    with pytest.raises(viz.GraphTooLarge):
        viz.draw_graph(big, view="both", max_nodes=full - 1)
    chain = Value(0.5)
    for _ in range(100):
        chain = chain * 1.01
    # was: "raise max_nodes=", a setting nothing in a notebook takes; now the call that draws it anyway
    assert viz.mimebundle(chain) == {"text/plain": f"{chain!r}\n(no picture: the graph has 201 nodes to draw, more "
                                                   "than the 150 a notebook draws; viz.draw_graph(v, max_nodes=201) at "
                                                   "the end of a cell draws it anyway (dot may take minutes on graphs "
                                                   "this big))"}
    assert len(viz.draw_graph(chain, view="both", max_nodes=201).source) > 0  # and it does
    # no neurons to collapse: text saying why
    assert viz.mimebundle(mg.nn.Linear(2, 3)) == {"text/plain": repr(mg.nn.Linear(2, 3))}  # no diagram: its repr


@needs_dot
def test_notebook_shows_values_and_modules_as_svg_when_small(neuron_graph, monkeypatch):
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell", reason="IPython is not installed")
    shell = interactiveshell.InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "microgradnn")  # what a notebook gets on `import microgradnn`
        o = neuron_graph
        bundle, _ = shell.display_formatter.format(o)
        assert bundle["text/plain"] == repr(o) and bundle["image/svg+xml"].lstrip().startswith("<?xml")
        assert "image/svg+xml" in shell.display_formatter.format(MLP(2, [3, 1], seed=0))[0]
        big = MLP(2, [16, 16, 1], seed=0)([0.1, 0.2])
        assert "collapsed: each call of a neuron is one node" in shell.display_formatter.format(big)[0]["image/svg+xml"]
        shell.display_formatter.active_types = ["text/plain"]  # what a terminal IPython shows: dot must not run
        monkeypatch.setattr(viz.notebook, "mimebundle", lambda obj: pytest.fail("drew a picture for a terminal"))
        assert shell.display_formatter.format(o)[0] == {"text/plain": repr(o)}
    finally:
        interactiveshell.InteractiveShell.clear_instance()
    assert not viz.register()  # outside a shell there is nothing to register with
    assert viz.draw_graph(o)._repr_mimebundle_()["image/svg+xml"].startswith("<?xml")


def lesson_network():
    """The lesson's 2 -> 3 -> 1 network: 3 hidden ReLU neurons, one sigmoid output."""
    return MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)]),
                            mg.Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])


def network_svg(model, x):
    """(circles by node id: (cx, cy, fill, texts), document order of node and edge groups) of draw_network."""
    root = ET.fromstring(viz.draw_network(model, x).pipe(format="svg", encoding="utf-8"))
    circles, order = {}, []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") in ("node", "edge"):
            order.append((g.get("class"), g.get("id")))
        ellipse = next(g.iter(f"{SVG}ellipse"), None)
        if g.get("class") == "node" and ellipse is not None:
            circles[g.get("id")] = (float(ellipse.get("cx")), float(ellipse.get("cy")), ellipse.get("fill").upper(),
                                    [t.text for t in g.iter(f"{SVG}text")])
    return circles, order


@needs_dot
@pytest.mark.parametrize("build, x", [(lesson_network, [1.0, 0.5]),
                                      (lambda: MLP(2, [16, 16, 1], activation="tanh", seed=0), [0.5, -1.0])],
                         ids=["lesson 2-3-1", "2-16-16-1"])
def test_draw_network_neurons_in_index_order_edges_under_nodes_and_signed_fills(build, x):
    model = build()
    circles, order = network_svg(model, x)
    sizes = [model.nin] + [layer.nout for layer in model.layers]
    acts = [list(x)] + [[v.data for v in (h if isinstance(h, list) else [h])]
                        for h in _layer_outputs(model, x)]
    for li, size in enumerate(sizes):
        column = [circles[f"L{li}N{j}"] for j in range(size)]
        assert len({c[0] for c in column}) == 1  # one column per layer
        ys = [c[1] for c in column]  # SVG y grows downwards: index order is top to bottom
        assert ys == sorted(ys) and len(set(ys)) == size
        assert [c[3][0] for c in column] == [f"{'x' if li == 0 else 'n'}{j}" for j in range(size)]
        assert [c[3][1] for c in column] == [f"{a:.3g}" for a in acts[li]]
    kinds = [kind for kind, _ in order]
    assert kinds.count("edge") == sum(a * b for a, b in zip(sizes, sizes[1:])) + sizes[-1]
    assert kinds.index("node") > max(i for i, k in enumerate(kinds) if k == "edge")  # every edge drawn first
    fills = {}
    for li in range(1, len(sizes)):
        for j, a in enumerate(acts[li]):
            fills.setdefault(a > 0, set()).add(circles[f"L{li}N{j}"][2])
    if len(sizes) > 3:  # tanh: both signs appear, and no colour is used for both
        assert fills[True] and fills[False] and not fills[True] & fills[False]


def _layer_outputs(model, x):
    h, outs = x, []
    for layer in model.layers:
        h = layer(h)
        outs.append(h)
    return outs


@needs_dot
def test_text_width_is_the_width_dot_draws_the_widest_text_at():
    text = "class 0 (the largest of 2 outputs)"  # what sizes the prediction box
    g = viz.format.Diagram(node_attr={"fontname": viz.format.FONT, "fontsize": "11", "shape": "box", "margin": "0",
                                      "width": "0", "height": "0"})
    g.node("b", label=viz.format._html(text))
    svg = g.pipe(format="svg", encoding="utf-8")
    xs = [float(p.split(",")[0]) for p in re.search(r'stroke="black" points="([^"]+)"', svg).group(1).split()]
    assert viz.network.text_width(["ab", text]) == pytest.approx(max(xs) - min(xs), abs=0.5)


def test_activation_fill_tells_sign_apart_and_keeps_growing_past_one():
    colour = viz.network.activation_color
    assert colour(1.7) != colour(-1.7) and colour(0.0) == "#FFFFFF"
    assert len({colour(a) for a in (1.0, 1.7, 3.0, 10.0)}) == 4 and len({colour(-a) for a in (1.0, 1.7, 3.0)}) == 3
    red = [int(colour(a)[5:7], 16) for a in (0.25, 0.5, 1.0, 1.7, 5.0)]  # blue channel falls as |a| grows
    assert red == sorted(red, reverse=True)
    assert (colour(0.5), colour(-0.5)) == ("#F2B080", "#AE9ECC")  # half way from white to orange, to purple
    assert (colour(1e9), colour(-1e9)) == ("#E66101", "#5E3C99")


@needs_dot
def test_draw_network_encodes_weights_titles_legend_and_prediction_words():
    m = lesson_network()
    g = viz.draw_network(m, [1.0, 0.5])
    src = g.source
    nodes, edges, _ = parse_svg(g.pipe(format="svg", encoding="utf-8"))
    assert [nodes[f"L1N{j}"] for j in range(3)] == [["n0", "0.4"], ["n1", "0.3"], ["n2", "0.05"]]  # as demo 02 prints
    assert nodes["prediction"] == ["prediction", "0.6399", "Yes (64.0% confidence)"]
    widths = dict(re.findall(r'(L\dN\d -> L\dN\d) \[color="#[0-9A-F]{6}" id=\S+ penwidth=([\d.]+)', src))
    assert float(widths["L1N0 -> L2N0"]) > float(widths["L1N1 -> L2N0"])  # |0.7| > |0.4|
    assert re.search(r'L0N1 -> L1N0 \[color="#C0392B"', src) and re.search(r'L0N0 -> L1N0 \[color="#2E86C1"', src)
    assert len([e for e in edges if "prediction" not in e]) == 2 * 3 + 3
    title = [t.text for t in ET.fromstring(g.pipe(format="svg", encoding="utf-8")).find(f"{SVG}g").findall(f"{SVG}text")]
    assert title == ["MLP(2 -> 3 relu -> 1 sigmoid, 13 parameters)", "input x = [1, 0.5]"]
    assert [nodes[f"head{li}"] for li in range(3)] == [["input"], ["layer 0", "relu"], ["layer 1", "sigmoid"]]
    x = {name: float(at) for name, at in re.findall(r'^\s*(\w+) \[.*?pos="([-\d.]+),[-\d.]+!"', src, re.M)}
    assert [x[f"head{li}"] for li in range(3)] == [x[f"L{li}N0"] for li in range(3)]  # each header over its column
    assert x["legend"] == (x["L0N0"] + x["L2N0"]) / 2 and x["L0N0"] < x["L1N0"] < x["L2N0"]  # the key centred below
    y = dict(re.findall(r'^\s*(L\dN\d) \[.*?pos="[-\d.]+,([-\d.]+)!"', src, re.M))
    assert [[y[f"L{li}N{j}"] for j in range(n)] for li, n in enumerate((2, 3, 1))] == [["27.0", "-27.0"],
                                                                                      ["54.0", "0.0", "-54.0"], ["0.0"]]
    assert nodes["legend"][:4] == ["edge colour:", "weight > 0", "weight < 0", "edge width:"]
    assert nodes["legend"][4:6] == ["|w| = 0", "|w| = 0.8 (the largest)"]
    scale = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)  # the fill key: each activation in the fill it is drawn in
    assert nodes["legend"][-8:] == ["fill = activation:", "-2", "-1", "-0.5", "0", "0.5", "1", "2"]
    assert re.findall(r'BGCOLOR="(#[0-9A-F]{6})" WIDTH="32"', src) == [viz.network.activation_color(a) for a in scale]
    zero = mg.Layer.from_weights([([0.0, 0.0], 0.5)], "tanh")  # its legend's widest line read "|w| = 1 (the largest)"
    legend = parse_svg(viz.draw_network(zero).pipe(format="svg", encoding="utf-8"))[0]["legend"]
    assert legend[3:] == ["edge width:", "|w| = 0 (every weight)"]
    assert viz.network.prediction_words(m, [0.3]) == "No (70.0% confidence)"
    assert viz.network.prediction_words(MLP(2, [3], seed=0), [0.1, 0.7, 0.3]) == "class 1 (the largest of 3 outputs)"
    assert viz.network.prediction_words(MLP(2, [1], seed=0), [-0.2]) == "class 0 (score -0.2 ≤ threshold 0)"


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


def test_record_keeps_every_nth_step_from_the_first_draws_as_draw_graph_does_and_refuses_an_unknown_format(tmp_path):
    x = Value(0.5, label="x")
    with viz.record(tmp_path / "steps", every=3, format="dot"):
        for _ in range(5):
            (x * 2.0 + 1.0).backward()
    assert sorted(os.listdir(tmp_path / "steps")) == [f"step-000{i}-{v}.dot" for i in (1, 4)
                                                      for v in ("backward", "forward")]
    source = (tmp_path / "steps" / "step-0004-backward.dot").read_text()
    assert "step 4 · backward" in source and ">grad 8<" in source  # x has gathered 4 backward passes
    assert "label=<* 2>" in source and "label=<+ 1>" in source  # plain numbers written into their ops
    assert re.findall(r'BGCOLOR="(#[0-9A-F]{6})"', source) == ["#D6EAF8", "#FFFFFF", "#D5F5E3"]  # fills by kind
    with pytest.raises(ValueError, match=r"^record: format must be svg, png, pdf or dot, got 'jpg'$"):
        with viz.record(tmp_path / "jpg", format="jpg"):  # (each step's save would refuse it, as a warning)
            pass
    assert not (tmp_path / "jpg").exists()


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
    # each cell is as wide as the text drawn in it (a\x01b\x0bc\ud800: 17 characters), not as the label's 6
    assert 'ID="v0_label" WIDTH="129"' in viz.draw_graph(y).source  # was 52: the text ran out of its box


@needs_dot
@pytest.mark.parametrize("label", ["</script><script>document.title='pwned'</script>", "<!--<script>", "]]>&amp;"])
def test_no_label_or_title_changes_how_the_animation_page_parses(page, tmp_path, label):
    x = Value(0.5, label)
    o = (x * 2.0).tanh()
    o.label = label + "\u2028\ud800"
    o.backward()
    path = tmp_path / "anim.html"
    viz.animate(o, path, title=label)
    page.goto(f"{path.as_uri()}#step=2")
    page.wait_for_function("document.body.dataset.step === '2'", timeout=10_000)  # the script ran and stepped
    assert page.title() == label and not page.errors, page.errors


@needs_dot
def test_record_survives_its_own_errors_and_ignores_other_threads(tmp_path):
    import threading
    x = Value(0.5, "x")
    with viz.record(tmp_path / "frames", max_nodes=1) as written:  # every drawing is too large
        with pytest.warns(RuntimeWarning, match=r"GraphTooLarge: .* as in viz\.record\(directory, max_nodes=5\)"):
            (x * x + x).backward()  # the advice named viz.draw_graph(v, ...), a call the user never made
    assert x.grad == 2.0 and written == []
    model = MLP(2, [2, 1], seed=0)
    for collapse, advice in ((False, r"pass collapse=True to draw each call of a neuron as one node, or a larger "
                                     r"max_nodes, as in viz\.record\(directory, max_nodes=\d+\)"),
                             (True, r"pass a larger max_nodes, as in viz\.record\(directory, collapse=True, "
                                    r"max_nodes=\d+\)")):
        with viz.record(tmp_path / f"model{collapse}", model, collapse=collapse, max_nodes=1):
            with pytest.warns(RuntimeWarning, match=advice):
                model([1.0, 2.0]).backward()
    with viz.record(tmp_path / "mine") as written:
        done = []
        other = threading.Thread(target=lambda: done.append((Value(1.0) * 3).backward()))
        other.start()
        other.join()
        assert done == [None] and written == []  # another thread's backward is not recorded
        (x * 3).backward()
        assert len(written) == 2


@needs_dot
def test_inputs_that_need_no_gradient_show_no_grad_and_no_local_derivative():
    # a data input times a weight: the gradient flows only to the weight (PyTorch's rule), so the
    # picture must not claim d(x*w)/dx = 0 or grad(x) = 0
    x, w = Value(0.5, "x", requires_grad=False), Value(-3.0, "w")
    out = (x * w).tanh()
    out.backward()
    svg = viz.draw_graph(out, view="both").pipe(format="svg", encoding="utf-8")
    texts = [t.strip() for t in ET.fromstring(svg).itertext() if t.strip()]
    assert "no grad" in texts and "×0" not in texts and "×0.5" in texts  # d/dw = x; nothing written toward x
    steps = viz.animation_steps(out)
    assert [s["title"] for s in steps if s["kind"] == "grad"] == ["Backward: grad of tanh(x*w)", "Backward: grad of x*w",
                                                                   "Backward: grad of w"]
    assert "∂/∂w = 0.5" in steps[0]["equation"] and "∂/∂x" not in steps[0]["equation"]


def test_save_refuses_a_destination_before_drawing(tmp_path, monkeypatch):
    import microgradnn.viz.files as files
    drawn = []
    monkeypatch.setattr(files, "_as_diagram", drawn.append)  # (the drawing: the work a refusal must come before)
    (tmp_path / "a.dot").write_text("mine")
    os.mkfifo(tmp_path / "p.dot")
    for name, overwrite, error in [("a.dot", False, FileExistsError), ("p.dot", True, ValueError),
                                   ("a.dot", "yes", TypeError)]:
        with pytest.raises(error, match=r"^save: "):
            viz.save(Value(1.0), tmp_path / name, overwrite=overwrite)
    assert drawn == [] and (tmp_path / "a.dot").read_text() == "mine"


def test_save_and_record_refuse_a_bytes_path_and_a_non_bool_overwrite(tmp_path):
    with pytest.raises(TypeError, match="save: path must be a str or os.PathLike, got bytes"):
        viz.save(Value(1.0), os.fsencode(tmp_path / "g.svg"))
    with pytest.raises(TypeError, match="record: path must be a str or os.PathLike, got bytes"):
        with viz.record(os.fsencode(tmp_path / "frames")):
            pass
    assert not (tmp_path / "frames").exists()
    (tmp_path / "step-0001-forward.dot").write_text("keep")
    with pytest.raises(TypeError, match="record: overwrite must be True or False, got str 'no'"):
        with viz.record(tmp_path, format="dot", overwrite="no"):
            pass
    assert (tmp_path / "step-0001-forward.dot").read_text() == "keep"


def test_a_grad_of_none_is_drawn_as_none():
    a = Value(2.0, label="a")
    b = a * 3
    a.grad = None  # torch's "no gradient"
    for view in ("forward", "backward", "both"):
        assert "grad None" in viz.draw_graph(b, view=view).source or view == "forward"
    assert viz.draw_graph(b, color_by_grad=True).source


def test_animate_network_draws_a_network_with_a_frozen_weight(tmp_path):
    # grad() refuses a frozen input (as torch does); the page still shows what backprop would give it
    net = MLP(2, [3, 1], seed=0)
    net.parameters()[0].requires_grad = False
    path = viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", target=1.0)
    assert os.path.getsize(path) > 0
    assert net.parameters()[0].requires_grad is False
    first = net.layers[0].neurons[0]  # a whole neuron frozen: grad() refuses no inputs, as torch's
    first.requires_grad_(False)
    assert os.path.getsize(viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", target=1.0,
                                               overwrite=True)) > 0


def test_animate_network_inside_no_grad_shows_the_same_page(tmp_path):
    # its backward and step ran in the caller's no_grad(): an IndexError from inside
    net = MLP(2, [3, 1], seed=0)
    plain = viz.animate_network(net, [1.0, 0.5], tmp_path / "plain.html", target=1.0)
    with mg.no_grad():
        quiet = viz.animate_network(net, [1.0, 0.5], tmp_path / "quiet.html", target=1.0)
        assert not mg.is_grad_enabled()
    assert open(quiet).read() == open(plain).read()


def test_record_into_a_file_says_it_needs_a_folder(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"record: .*notes.txt is a file, not a folder"):
        with viz.record(mine):
            pass
    assert mine.read_text() == "mine"


def test_animation_captions_write_nested_expressions_with_parentheses():
    # (x + 2)*3 written as "x + 2*3" reads as 7, not the 9 shown beside it
    x, y = Value(1.0, "x"), Value(3.0, "y")
    out = ((x + 2) * 3) / (x - (y - 1))
    out.backward()
    equations = " ".join(s["equation"] for s in viz.animation_steps(out))
    assert "(x + 2)*3 = 9" in equations and "x + 2*3" not in equations
    assert "x - (y - 1) = -1" in equations
    z = x * -2
    z.backward()
    assert viz.animation_steps(z)[0]["equation"].startswith("x*(-2) = -2;")


def test_animation_captions_name_a_folded_number_once():
    x = Value(1.0, "x")
    out = x + 2
    out.backward()
    assert "its inputs (x = 1, 2)" in viz.animation_steps(out)[0]["caption"]  # was "(x = 1, 2 = 2)"


@needs_dot
@pytest.mark.parametrize("text", ["\t", "\r", "\t\r\t"])
def test_a_title_or_note_of_only_tabs_or_carriage_returns_renders(text):
    # dot's parser refused such a label: rendering failed with a syntax error from dot
    a = Value(1.5, label="a")
    for g in (viz.draw_graph(a.tanh(), title=text), viz.draw_graph(a.tanh(), highlight={a: text}),
              viz.draw_network(MLP(1, [1], seed=0), title=text)):
        assert "<svg" in g.pipe(format="svg", encoding="utf-8")



def test_bad_highlight_max_nodes_and_rankdir_get_clear_errors(tmp_path):
    a = Value(1.5, label="a")
    b = a.tanh()
    with pytest.raises(ValueError, match="draw_graph: highlight holds .* which is not in the graph"):
        viz.draw_graph(b, highlight=Value(3.0))  # drew nothing red, silently
    with pytest.raises(TypeError, match="draw_graph: highlight must be a Value, a collection of Values or a dict"):
        viz.draw_graph(b, highlight=3)
    assert "label=<0>" in viz.draw_graph(b, highlight={a: 0}).source  # a note of 0 was dropped
    for bad, error in [(True, TypeError), (-1, ValueError), (2.5, TypeError), ("5", TypeError)]:
        with pytest.raises(error, match="draw_graph: max_nodes must be a positive int"):
            viz.draw_graph(b, max_nodes=bad)
        with pytest.raises(error, match="animate: max_nodes must be a positive int"):
            viz.animate(b, tmp_path / "a.html", max_nodes=bad)
        with pytest.raises(error, match="draw_network: max_elements must be a positive int"):
            viz.draw_network(MLP(2, [1], seed=0), max_elements=bad)
        with pytest.raises(error, match="record: max_nodes must be a positive int"):
            with viz.record(tmp_path, max_nodes=bad):
                pass
    with pytest.raises(ValueError, match="draw_modules: rankdir must be one of LR, TB, RL, BT, got 'XX'"):
        viz.draw_modules(b, [MLP(1, [1])], rankdir="XX")
    # were Python's own "unhashable type: 'list'" and "'MLP' object is not iterable"
    with pytest.raises(TypeError, match="^draw_graph: highlight must hold Values, got list$"):
        viz.draw_graph(b, highlight=[[a]])
    for bad, message in ((MLP(1, [1]), r"Modules \(for one, pass \[module\]\), got MLP$"),
                         (None, "Modules, got NoneType$"), ([], "Modules, got an empty list$"),
                         ([MLP(1, [1]), "x"], "Modules, got str at index 1$"),
                         # (were "got str at index 0", of a str's first letter or a dict's first key)
                         ("layers", "Modules, got str 'layers'$"), ({"mlp": MLP(1, [1])}, "Modules, got dict .*$")):
        with pytest.raises(TypeError, match="^draw_modules: modules must be a non-empty list of " + message):
            viz.draw_modules(b, bad)
    with pytest.raises(TypeError, match="^record: model must be a Module or None, got str 'mlp'$"):
        with viz.record(tmp_path / "steps", "mlp"):  # was taken as a model: collapse=True
            pass
    assert not (tmp_path / "steps").exists()


def test_yes_no_options_must_be_true_or_false_not_a_truthy_string(tmp_path):
    # collapse="no" drew the collapsed graph, quiz="no" asked the quiz
    model = MLP(2, [2, 1], seed=0)
    out = model([1.0, 2.0])
    out.backward()
    for call, what in ((lambda: viz.draw_graph(out, collapse="no"), "draw_graph: collapse"),
                       (lambda: viz.draw_graph(out, show_constants=1), "draw_graph: show_constants"),
                       (lambda: viz.draw_graph(out, color_by_grad="yes"), "draw_graph: color_by_grad"),
                       (lambda: viz.draw_network(model, legend="no"), "draw_network: legend"),
                       (lambda: viz.animate(out, tmp_path / "a.html", quiz="no"), "animate: quiz"),
                       (lambda: viz.animate_network(model, [1.0, 2.0], tmp_path / "b.html", quiz="no"),
                        "animate_network: quiz")):
        with pytest.raises(TypeError, match=f"{what} must be True or False, got"):
            call()
    with pytest.raises(TypeError, match="record: collapse must be True or False, got str 'x'"):
        with viz.record(tmp_path / "steps", collapse="x"):
            pass
    assert not list(tmp_path.iterdir())


def test_animation_captions_put_a_compound_name_after_a_derivative_sign_in_parentheses():
    # "∂/∂(x + 2)*3 = 6" reads as (∂/∂(x + 2))*3; a plain name (x, w1, 2) stays bare
    x = Value(1.0, "x")
    out = ((x + 2) * 3) * (Value(2) * 3)
    out.backward()
    equations = [s["equation"] for s in viz.animation_steps(out)]
    assert "local derivatives: ∂/∂((x + 2)*3) = 6; ∂/∂(2*3) = 9" in equations[3]
    assert equations[0].endswith("∂/∂x = 1") and equations[1].endswith("∂/∂2 = 3")
    assert equations[2].endswith("∂/∂(x + 2) = 3")
    assert equations[4] == "grad of (x + 2)*3*(2*3) = 1 (∂((x + 2)*3*(2*3))/∂((x + 2)*3*(2*3)))"
    x.grad = 0.0  # else its grad holds out's too, and the equation adds `what it held`
    z = (x.tanh() * Value(3.0, "w1")).tanh()
    z.backward()
    equations = [s["equation"] for s in viz.animation_steps(z)]
    assert "grad of tanh(x)*w1 = ∂(tanh(tanh(x)*w1))/∂(tanh(x)*w1) × grad(tanh(tanh(x)*w1))" in equations[4]
    assert equations[-1].startswith("grad of x += ∂(tanh(x))/∂x × grad(tanh(x)) =")
    p = (x + 2) * (x + 3)
    p.backward()
    assert "grad of x + 2 = (x + 3) × grad((x + 2)*(x + 3))" in viz.animation_steps(p)[-2]["equation"]


def test_record_overwrite_removes_an_earlier_recordings_step_files_and_nothing_else(tmp_path):
    def run(steps: int, **options) -> list[str]:
        x = Value(1.0, "x")
        with viz.record(tmp_path, format="dot", **options) as written:
            for k in range(steps):
                (x * (k + 2.0)).backward()
        return written

    run(3)
    mine = ["step-notes.txt", "step-0002-forward.svg.bak", "mystep-0003-forward.dot", "step-0003-forward.dot.txt",
            "step-0004-forward.gv"]
    for name in mine:
        (tmp_path / name).write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        run(1)
    (tmp_path / "step-0007-backward.png").write_text("an earlier recording in png")
    assert len(os.listdir(tmp_path)) == 7 + len(mine)  # the refusal changes nothing
    written = run(1, overwrite=True)  # before: steps 2 and 3 of the longer run stayed beside step 1
    expected = [f"step-0001-{v}.dot" for v in ("backward", "forward")]
    assert sorted(os.listdir(tmp_path)) == sorted(expected + mine)
    assert sorted(os.path.basename(p) for p in written) == expected
    assert all((tmp_path / name).read_text() == "mine" for name in mine)


def test_highlight_inside_a_collapsed_neuron_draws_its_box_highlighted():
    n = mg.Neuron.from_weights([0.6, 0.3], 0.1, activation="tanh")
    out = n([Value(1.0, "x0"), Value(2.0, "x1")]) * 2
    out.backward()
    box = out.inputs[0]  # the neuron's output: its box, v2
    for inside in (box.inputs[0], n.w[0]):  # the pre-activation and a weight, both folded into the box
        source = viz.draw_graph(out, collapse=True, highlight={inside: "look"}).source  # was: no red anywhere
        node = next(line for line in source.splitlines() if line.strip().startswith("v2 ["))
        assert f'BGCOLOR="{viz.format.COLORS["highlight_fill"]}"' in node
        assert re.search(r'note2 -> v2 \[.*color="#D62728"', source) and "label=<look>" in source
        assert re.search(r'note2 -> v2 \[.* id="note2-v2"', source)  # named by its note and its node
        red = {line.split("[")[0].strip() for line in source.splitlines() if "->" in line and "#D62728" in line}
        assert {"v0 -> v2", "v1 -> v2", "v2 -> op3"} <= red
    notes = viz.draw_graph(out, collapse=True, highlight={box.inputs[0]: "a", n.b: "b"}).source
    assert "label=<a<BR/>b>" in notes  # two highlighted nodes in one box: one note with both
    x0 = next(v for v in mg.topological_order(out) if v.label == "x0")  # fed into the box: its edge is red
    assert re.search(r'v0 -> v2 \[.*#D62728', viz.draw_graph(out, collapse=True, highlight=x0).source)


@needs_dot
def test_a_leaf_feeding_far_apart_nodes_does_not_keep_a_notebook_waiting():
    x = Value(2.0, label="x")
    y = x
    for _ in range(37):  # 149 nodes, under the notebook's 150: x feeds every step, far apart
        y = y * 1.01 + x
    y.backward()
    start = time.perf_counter()
    svg = viz.mimebundle(y)["image/svg+xml"]  # was: dot took 51 s placing the long edges
    assert time.perf_counter() - start < 15
    assert len(parse_svg(svg)[0]) == 149


def test_a_graph_dot_would_crash_on_is_refused_before_dot_runs():
    x = Value(2.0, label="x")
    y = x
    for _ in range(100):  # 401 nodes, under max_nodes: x's edges pass 20,000 ranks; dot crashed after 40 s
        y = y * 1.01 + x
    with pytest.raises(viz.GraphTooLarge, match=r"pass over 20,000 ranks .* more than 5,000: a value is used "
                                                r"again many steps later .*; draw a smaller graph$"):
        viz.draw_graph(y, view="both")
    assert viz.draw_graph(Value(1.0) * 2 + 1).source  # short graphs pass nothing
    late = x
    for _ in range(100):
        late = late * 1.01
    for i in range(30):  # each drawn just before its use, passing no ranks (not 200 each from the first column)
        late = late + Value(float(i), label=f"c{i}")
    assert ">c29</TD>" in viz.draw_graph(late).source


def test_collapse_folds_only_neurons_and_its_too_large_advice_does_not_repeat_it():
    layer = mg.nn.Linear(2, 2, seed=0)
    with mg.nn.tag_modules():  # Linear tags the nodes it makes; it is no neuron to fold into a box
        out = sum(layer([Value(1.0, "x0"), Value(2.0, "x1")]))
    assert viz.draw_graph(out, collapse=True).source.count("plaintext") == \
        viz.draw_graph(out).source.count("plaintext")  # was: AttributeError, Linear has no .activation
    big = MLP(2, [16, 16, 1], seed=0)([0.1, 0.2])
    with pytest.raises(viz.GraphTooLarge, match=r"^the graph has 35 nodes to draw with each call of a neuron as one node, more "
                                                r"than max_nodes=10; pass a larger max_nodes, as in "
                                                r"viz\.draw_graph\(v, collapse=True, max_nodes=35\) \(dot"):
        viz.draw_graph(big, collapse=True, max_nodes=10)  # was: "pass collapse=True", which it was


@needs_dot
def test_a_very_long_label_is_drawn_by_its_start():
    x = Value(1.0, "x" * 20_000)
    y = x * 2
    y.label = "&" * 20_000  # each one &amp; once escaped
    y.backward()
    svg = viz.draw_graph(y, view="both", title="t" * 20_000).pipe(format="svg", encoding="utf-8")  # was: dot refused
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]  # its labels of over 16,384 characters
    assert "x" * 460 + "... (20,000 characters)" in texts and "&" * 460 + "... (20,000 characters)" in texts
    assert "t" * 460 + "... (20,000 characters)" in texts


def test_draw_network_names_a_bad_input_x():
    model = MLP(2, [3, 1], seed=0)
    for x, error, message in (([1.0, "a"], TypeError, r"^draw_network: x\[1\] must be a finite number, got str 'a'$"),
                              ([[1.0, 2.0]], TypeError, r"^draw_network: x\[0\] must be a finite number, got list"),
                              (3.0, TypeError, r"^draw_network: x must be a sequence of numbers, got float 3.0$")):
        with pytest.raises(error, match=message):  # was: float()'s own words, or "'float' object is not iterable"
            viz.draw_network(model, x)
    assert "prediction" in viz.draw_network(model, [Value(1.0), 2.0]).source  # Values still give their data


def test_animate_network_names_a_bad_input_x_as_draw_network_does(tmp_path):
    model = MLP(2, [3, 1], seed=0)
    for who, write in (("animate_network", lambda x: viz.animate_network(model, x, tmp_path / "n.html")),
                       ("draw_network", lambda x: viz.draw_network(model, x))):
        for x, error, message in (
                (3.0, TypeError, r"x must be a sequence of numbers, got float 3.0$"),  # was: expected 2 inputs, got 1
                ("ab", TypeError, r"x must be a sequence of numbers, got str 'ab'$"),
                ([[1.0, 2.0]], TypeError, r"x\[0\] must be a finite number, got list"),
                ([1.0, True], TypeError, r"x\[1\] must be a finite number, got bool True$"),
                ([1.0], ValueError, r"x must be a sequence of 2 numbers \(the network has 2 inputs\), got 1$"),
                # were drawn as x = [0, 1] (a dict's keys) and in the set's own order
                ({0: 1.0, 1: 2.0}, TypeError, r"x must be a sequence of numbers in input order, got dict"),
                ({2.0, 1.0}, TypeError, r"x must be a sequence of numbers in input order, got set")):
            with pytest.raises(error, match=rf"^{who}: {message}"):
                write(x)
    assert list(tmp_path.iterdir()) == []
    a = Value(1.0)
    viz.animate_network(model, [a, 0.5], tmp_path / "n.html", target=1.0)
    assert a.grad == 0.0  # the page's backward pass works on numbers: the caller's Value gets no gradient



def test_animate_network_names_a_bad_lr_or_target_and_a_step_that_overflows(tmp_path):
    model = MLP(2, [3, 1], seed=0)
    page = tmp_path / "n.html"
    for kwargs, error, message in (
            (dict(lr=True), TypeError, r"lr must be a finite number > 0, got bool True$"),  # was: ValueError
            (dict(lr="a"), TypeError, r"lr must be a finite number > 0, got str 'a'$"),
            (dict(lr=0.0), ValueError, r"lr must be a finite number > 0, got 0.0$"),
            (dict(target="yes"), TypeError,  # was: "mse: targets must be numbers ..."
             r"target must be a number or a sequence of numbers, got str 'yes'$"),
            (dict(target=float("nan")), ValueError, r"target must be finite, got nan$"),
            (dict(target=2.0, loss="binary_cross_entropy"), ValueError,
             r"loss binary_cross_entropy refused target=2.0 with the prediction: binary_cross_entropy: targets"),
            (dict(target=1.0, lr=1e300), ValueError,  # was: OverflowError from the engine's dot(...)
             r"lr=1e\+300 is too large: one gradient-descent step overflows \(dot\("),
            (dict(target=1.0, lr=1e150), ValueError, r"lr=1e\+150 is too large: .*\*\* 2.0: result is too large")):
        with pytest.raises(error, match=rf"^animate_network: {message}"):
            viz.animate_network(model, [1.0, 0.5], page, **kwargs)
    big = MLP.from_layers([mg.Layer.from_weights([([1.0, 1.0], 0.0)])])  # dL/dw = 2 × 120 × 10: the step is inf
    with pytest.raises(ValueError, match=r"^animate_network: lr=1e\+306 is too large: .*SGD.step: parameter 0"):
        viz.animate_network(big, [10.0, 10.0], page, target=-100.0, lr=1e306)
    linear = MLP.from_layers([mg.Layer.from_weights([([0.5, 0.5], 0.0)])])  # 0.75, then above 1 after the step
    with pytest.raises(ValueError, match=r"^animate_network: loss binary_cross_entropy refused target=1.0 with the "
                                         r"prediction after one gradient-descent step \(lr=1\): binary_cross_entropy: "
                                         r"predictions \(probabilities\) must lie in \[0.0, 1.0\]"):
        viz.animate_network(linear, [1.0, 0.5], page, target=1.0, loss="binary_cross_entropy", lr=1.0)
    assert list(tmp_path.iterdir()) == []
    viz.animate_network(model, [1.0, 0.5], page, target=True)  # a 0/1 label, as the losses take one


def test_animate_network_names_a_loss_of_ones_own_whose_error_takes_more_than_a_message(tmp_path):
    # rebuilt from the message alone: "TypeError: JSONDecodeError.__init__() missing 2 required positional arguments"
    def loss(preds, targets):
        return json.loads("{")
    with pytest.raises(ValueError, match=r"^animate_network: loss loss refused target=1.0 with the prediction: "
                                         r"Expecting property name"):
        viz.animate_network(MLP(2, [3, 1], seed=0), [1.0, 0.5], tmp_path / "n.html", target=1.0, loss=loss)
    assert list(tmp_path.iterdir()) == []

def test_demos_may_replace_files_only_in_out_or_with_overwrite(tmp_path, monkeypatch):
    # one rule for the CLI's demo and the demo scripts (they compared paths three ways)
    from microgradnn.viz.files import may_replace, refusal
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out")
    for own in ("out", "./out/", str(tmp_path / "out"), "mine/../out", "link"):
        assert may_replace(own, False), own
    assert not may_replace("mine", False) and may_replace("mine", True)
    for name in ("out/a.svg", "mine/a.svg", "notes.txt"):
        (tmp_path / name).write_text("there")
    (tmp_path / "mine" / "gone.svg").symlink_to(tmp_path / "nowhere")  # a dangling link is there too
    names = ["a.svg", "gone.svg", "new.svg"]
    for own in ("out", "./out/", str(tmp_path / "out")):
        assert refusal(own, names, False) is None
    assert refusal("mine", names, False) == ("mine: a.svg, gone.svg already exist there; pass --overwrite to replace "
                                             "them, or choose another folder")
    assert refusal("mine", ["gone.svg"], False) == ("mine: gone.svg already exists there; pass --overwrite to "
                                                    "replace it, or choose another folder")
    assert refusal("mine", names, True) is None and refusal("new", names, False) is None
    assert refusal("notes.txt", names, True) == "notes.txt is not a folder"
    with pytest.raises(TypeError, match="refusal: overwrite must be True or False, got str 'no'"):
        refusal("mine", names, "no")


def page_steps(path) -> list[dict]:
    """The steps an animation page shows, read back from the page."""
    text = open(path, encoding="utf-8").read()
    return json.loads(re.search(r"^const STEPS = (.*);$", text, re.M).group(1))


def test_animate_network_shows_the_same_gradients_when_the_model_holds_old_ones(tmp_path):
    # backward() without zero_grad leaves grads behind; the page's ∂L/∂w and SGD step are of this input alone
    def lesson_net():
        return MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)]),
                                mg.Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])
    stale = lesson_net()
    stale([1.0, 0.5]).backward()
    held = [p.grad for p in stale.parameters()]
    fresh = page_steps(viz.animate_network(lesson_net(), [1.0, 0.5], tmp_path / "fresh.html", target=1.0))
    shown = page_steps(viz.animate_network(stale, [1.0, 0.5], tmp_path / "stale.html", target=1.0))
    assert [s["equation"] for s in shown] == [s["equation"] for s in fresh]
    assert "∂L/∂w0 = n0 × ∂L/∂raw = 0.4 × (-0.3601) = -0.144;" in "\n".join(s["equation"] for s in shown)
    assert [p.grad for p in stale.parameters()] == held  # the model's own grads are left as they were


def test_animation_equation_adds_up_when_a_grad_held_more_than_this_pass_gave():
    # a second backward() without zero_grad doubles the leaves' grads: the sum shown must still add up
    x1, w1 = Value(2.0, label="x1"), Value(-3.0, label="w1")
    o = x1 * w1 + w1
    o.backward()
    o.backward()
    equations = {s["title"]: s["equation"] for s in viz.animation_steps(o)}
    assert equations["Backward: grad of w1"] == ("grad of w1 = x1 × grad(x1*w1) + 1 × grad(x1*w1 + w1) + what it held = "
                                               "2 × 1 + 1 × 1 + 3 = 6")
    assert equations["Backward: grad of x1"] == "grad of x1 = w1 × grad(x1*w1) + what it held = -3 × 1 + (-3) = -6"
    x1.grad = w1.grad = 0.0
    o.backward()
    assert viz.animation_steps(o)[-1]["equation"] == "grad of x1 += w1 × grad(x1*w1) = -3 × 1 = -3"


@pytest.mark.parametrize("who", ["animate", "animation_steps"])
def test_animation_of_grads_set_to_none_asks_for_backward(tmp_path, who):
    # zero_grad(set_to_none=True) without a backward since: a TypeError from deep inside, and no page
    model = MLP(2, [2, 1], seed=0)
    model.zero_grad(set_to_none=True)
    out = model([1.0, 2.0])
    path = tmp_path / "a.html"
    with pytest.raises(ValueError, match=rf"^{who}: root.backward\(\) must have run: the grad of w0 #1 is None"):
        viz.animate(out, path) if who == "animate" else viz.animation_steps(out)
    assert not path.exists()
    out.backward()
    assert viz.animation_steps(out)[-1]["kind"] == "grad"


def test_animation_cuts_a_long_backward_sum_and_tells_same_named_nodes_apart():
    v = Value(2.0, label="v")
    out = v * 3
    for _ in range(33):
        out = out + v * 0.001  # v is used 34 times; 33 nodes read "v*0.001"
    out.backward()
    steps = viz.animation_steps(out)
    equation = {s["title"]: s["equation"] for s in steps}["Backward: grad of v"]
    assert equation.count("×") <= 2 * 6 and "… (28 more)" in equation, equation  # the symbols and the numbers
    assert equation.endswith(f" = {viz.fmt(v.grad)}") and v.grad == pytest.approx(3.033)  # the real total
    forward = [s["title"] for s in steps if s["title"].startswith("Forward")]
    assert len(set(forward)) == len(forward), forward  # every node named apart
    assert "Forward: v*0.001 #2" in forward
    backward = [s["equation"] for s in steps if s["title"].startswith("Backward")]
    assert all(len(e) < 400 for e in backward), max(backward, key=len)


def test_animate_network_cuts_a_long_sum_in_the_words_animate_uses(tmp_path):
    # a neuron of 9 inputs: its w·x sum shows 6 terms, then how many more (as animate's backward sums)
    model = MLP(9, [1], seed=0)
    steps = page_steps(viz.animate_network(model, [0.1 * i for i in range(9)], tmp_path / "wide.html", target=1.0))
    cut = [s["equation"] for s in steps if " + …" in s["equation"]]
    assert cut and all("… (3 more)" in e for e in cut), cut


def test_animate_network_shows_true_derivatives_through_a_frozen_layer(tmp_path):
    # a frozen first layer got no gradient from backward, so the page said relu'(0.06) = 0 (raw ≤ 0),
    # "∂L/∂out = 0.2612 × (-1.19) = 0" and "x0 × ∂L/∂raw = 0 × 0" for x0 = 1, and asked the quiz that way
    torch = pytest.importorskip("torch")

    def lesson_net():
        return MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3)], "relu"),
                                mg.Layer.from_weights([([0.7, -0.5], 0.2)], "linear")])
    net = lesson_net()
    net.layers[0].requires_grad_(False)
    steps = page_steps(viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", target=1.0, loss="mse"))
    assert all(not p.requires_grad for p in net.layers[0].parameters())  # the model is left as it was
    W1 = torch.tensor([[0.5, -0.4], [0.2, 0.8]], dtype=torch.float64, requires_grad=True)
    b1 = torch.tensor([0.1, -0.3], dtype=torch.float64, requires_grad=True)
    W2, b2 = torch.tensor([0.7, -0.5], dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)
    raw = W1 @ torch.tensor([1.0, 0.5], dtype=torch.float64) + b1
    raw.retain_grad()
    loss = (torch.relu(raw) @ W2 + b2 - 1.0) ** 2
    loss.backward()
    by_title = {s["title"]: s for s in steps}
    for j in range(2):
        where = f"layer 0 (relu), neuron n{j}"
        assert by_title[f"Backward · {where}: local derivative"]["ask"]["value"] == 1.0  # raw > 0
        assert by_title[f"Backward · {where}: ∂L/∂raw"]["ask"]["value"] == pytest.approx(raw.grad[j].item(), abs=1e-12)
        w_step = by_title[f"Backward · {where}: ∂L/∂w for each incoming edge"]
        assert w_step["ask"]["value"] == pytest.approx(W1.grad[j, 0].item(), abs=1e-12)
        assert "x0 × ∂L/∂raw = 1 × " in w_step["equation"] and "(frozen: not stepped)" in w_step["equation"]
    descent = next(s for s in steps if s["title"].startswith("Gradient descent"))
    assert "e.g. w0 of layer 1 n0: 0.7 - 0.1 × " in descent["equation"]  # a parameter the step moves
    assert "(3 parameters; the 6 frozen ones stay)" in descent["caption"]
    net.requires_grad_(False)
    steps = page_steps(viz.animate_network(net, [1.0, 0.5], tmp_path / "all.html", target=1.0, loss="mse"))
    assert "Every parameter is frozen" in steps[-2]["caption"] and "stayed the same" in steps[-1]["caption"]


def test_a_title_that_is_no_str_is_refused(tmp_path):
    # animate(v, path, title=None) wrote a page headed "None"; draw_graph(v, title=5) a picture headed "5"
    v = Value(2.0, label="v") * 3
    v.backward()
    net = MLP(2, [2, 1], seed=0)
    calls = {"draw_graph": lambda t: viz.draw_graph(v, title=t),
             "draw_modules": lambda t: viz.draw_modules(v, [net], title=t),
             "draw_network": lambda t: viz.draw_network(net, title=t),
             "animate_network": lambda t: viz.animate_network(net, [1.0, 0.5], tmp_path / "n.html", title=t)}
    for who, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{who}: title must be a str or None, got int 5"):
            call(5)
    with pytest.raises(TypeError, match=r"^animate: title must be a str, got NoneType None"):
        viz.animate(v, tmp_path / "a.html", title=None)
    with pytest.raises(TypeError, match=r"^animation_steps: expected a Value, got int"):
        viz.animation_steps(3)
    assert list(tmp_path.iterdir()) == []


def test_animate_network_refuses_a_network_too_large_before_any_step_with_a_way_out(tmp_path):
    # it computed every step, then failed in draw_network naming max_elements=, which it did not take
    net = MLP(2, [3, 1], seed=0)  # 2 + 3 + 1 neurons and inputs, 6 + 3 weights
    with pytest.raises(viz.GraphTooLarge, match=r"animate_network: the network has 6 neurons and inputs and 9 "
                                                r"weights to draw, more than max_elements=14; pass a larger"):
        viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", max_elements=14)
    assert not os.listdir(tmp_path)
    assert os.path.getsize(viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", max_elements=15)) > 0
    with pytest.raises(ValueError, match="animate_network: max_elements must be a positive int"):
        viz.animate_network(net, [1.0, 0.5], tmp_path / "other.html", max_elements=0)


def test_animate_network_writes_a_negative_number_squared_in_parentheses():
    # "1 - -0.9987² = 0.002673" reads as 1 + 0.9974; the loss read "(-0.9987 - -1)²"
    from microgradnn.viz.network_animation import network_steps
    net = MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], -2.0)], "tanh"),
                           mg.Layer.from_weights([([0.7], -3.0)], "tanh")])
    steps, _, _ = network_steps(net, [1.0, 0.5], target=-1.0, loss="mse")
    equations = [s["equation"] for s in steps]
    assert "tanh'(raw) = 1 - out² = 1 - (-0.9987)² = 0.002673" in equations, equations
    assert "tanh'(raw) = 1 - out² = 1 - (-0.9354)² = 0.125" in equations, equations
    assert "L = (prediction - target)² = (-0.9987 - (-1))² = 1.788e-06" in equations, equations
    assert not any("- -" in e for e in equations), equations


def test_draw_graph_of_a_plain_number_draws_it_and_not_an_empty_picture(tmp_path):
    # a Value computed under no_grad() is a leaf needing no grad: the root was folded away as a
    # constant, so draw_graph, animate and a notebook drew nothing at all
    net = MLP(2, [3, 1], seed=0)
    with mg.no_grad():
        y = net([1.0, 2.0])
    for view in ("forward", "both"):
        source = viz.draw_graph(y, view=view).source
        assert f"data {viz.fmt(y.data)}" in source, source
    assert "data 3<" in viz.draw_graph(Value(3.0, requires_grad=False)).source
    assert viz.draw_graph(Value(2.0, requires_grad=False) * 3).source.count("data ") == 1  # constants still folded


def test_animation_of_a_graph_backward_never_ran_on_says_so():
    # a forgotten backward(): the page showed every grad as 0, "grad of y = 0 (given: what the backward
    # pass brought to it)" and "grad of x = x × grad(y) + x × grad(y) = 2 × 0 + 2 × 0 = 0", unexplained
    x = Value(2.0, label="x")
    y = x * x
    y.label = "y"
    start = next(s for s in viz.animation_steps(y) if s["kind"] == "grad")
    assert "Its grad is 0, where backward() starts it at 1" in start["caption"], start
    y.backward()
    steps = viz.animation_steps(y)
    assert not any("Its grad is 0" in s["caption"] for s in steps)
    assert steps[-1]["equation"] == "grad of x = x × grad(y) + x × grad(y) = 2 × 1 + 2 × 1 = 4"


def test_highlight_of_a_number_folded_into_its_op_says_to_draw_constants():
    # a plain number is written into its op's label, not drawn: highlighting it drew nothing red, silently
    x, c = Value(2.0, label="x"), Value(3.0, requires_grad=False)
    y = x * c
    with pytest.raises(ValueError, match=r"^draw_graph: highlight holds Value\(data=3, grad=0\), a plain number "
                                         r"written into its op's label \(\* 3\); pass show_constants=True to draw "
                                         r"it as a node$"):
        viz.draw_graph(y, highlight={c: "this one"})
    source = viz.draw_graph(y, highlight={c: "this one"}, show_constants=True).source
    assert "label=<this one>" in source and "#D62728" in source
    assert "#D62728" in viz.draw_graph(y, highlight=[x, y]).source  # drawn nodes as before


@needs_dot
def test_a_label_of_wide_letters_gets_a_cell_it_fits(capfd):
    # label cells were sized at 7 points a character, so "MMMMMMMMMMMMMMMMMMMM" (or "Sum", or CJK) ran out
    # of its cell over the next one and off the picture, and dot wrote "cell size too small" on stderr
    for label in ("M" * 20, "WWW", "Sum", "汉字" * 5, "x1"):
        x = Value(1.5, label=label)
        y = x * 2
        y.label = label
        y.backward()
        for view in ("forward", "both"):
            viz.draw_graph(y, view=view).pipe(format="svg")
        viz.draw_graph(MLP(2, [1], seed=0)([x, x]), collapse=True).pipe(format="svg")
    # the widest numbers 4 significant digits make: "data -1.234e-300", "grad -8.888e+290", "×-1.235e+08"
    x = Value(-1.2345e-300, label="x")
    y = x * -123456789.0
    y.backward(-8.888e+290)
    viz.draw_graph(y, view="both").pipe(format="svg")
    assert "too small" not in capfd.readouterr().err


def test_collapse_draws_one_edge_from_an_input_a_neuron_takes_twice():
    x = Value(1.5, label="x")
    out = mg.Neuron(2, seed=0)([x, x])
    source = viz.draw_graph(out, collapse=True).source
    assert re.findall(r"^\s*(v\d+ -> v\d+) ", source, re.M) == ["v0 -> v1"]


def test_collapse_draws_a_box_for_each_call_of_a_neuron():
    model = MLP(2, [2, 1], seed=0)
    xs = [[Value(0.5, "a0"), Value(-1.0, "b0")], [Value(0.5, "a1"), Value(0.0, "b1")]]
    y0, y1 = (model(x) for x in xs)
    loss = y0 + y1
    loss.backward()
    source = viz.draw_graph(loss, view="both", collapse=True).source
    boxes = re.findall(r'>(layers\.\d\.neurons\.\d) \w+</TD><TD ID="(v\d+)_data"[^>]*>data ([^<]*)</TD>', source)
    # was: one box per neuron (the second sample's), sample 0's inputs drawn with no edge, and y0 written
    # into the + as a constant "0.4241 +"
    assert sorted(name for name, _, _ in boxes) == sorted(["layers.0.neurons.0", "layers.0.neurons.1",
                                                            "layers.1.neurons.0"] * 2)
    shown = {data for name, _, data in boxes if name == "layers.1.neurons.0"}
    assert shown == {viz.fmt(y0.data), viz.fmt(y1.data)}
    op = re.search(r"op\d+ \[label=<([^>]*)>", source).group(1)
    assert op == "+", op
    for label in ("a0", "b0", "a1", "b1"):
        vid = re.search(rf'<TD ID="(v\d+)_label"[^>]*>{label}</TD>', source).group(1)
        assert len(re.findall(rf"^\s*{vid} -> v\d+ ", source, re.M)) == 2, label  # into both first-layer boxes


def test_collapse_draws_a_weight_used_outside_its_neuron_as_itself():
    n = mg.Neuron.from_weights([0.6, 0.3], 0.1, activation="tanh")
    w = n.w[0]
    w.label = "w0"
    loss = n([Value(1.0, "x0"), Value(2.0, "x1")]) + w * w  # a penalty on w0
    loss.backward()
    source = viz.draw_graph(loss, view="both", collapse=True).source
    vid = re.search(r'<TD ID="(v\d+)_label"[^>]*>w0</TD>', source)
    assert vid, source  # was: w0 folded away, the penalty's op drawn as "0.6 * 0.6", a constant squared
    assert len(re.findall(rf"^\s*{vid.group(1)} -> (op\d+|v\d+) ", source, re.M)) == 3  # *, twice, and the neuron
    assert f">grad {viz.fmt(w.grad)}<" in source


def test_draw_modules_writes_plain_numbers_into_their_op():
    layer = mg.nn.Linear(2, 1, seed=0)
    with mg.nn.tag_modules():
        out = layer([Value(1.0, "x0"), Value(2.0, "x1")])[0]
    source = viz.draw_modules(3 - out * 0.5, [layer]).source
    ops = re.findall(r"^\s*opv\d+ \[label=<([^>]*)>", source, re.M)
    assert ops == ["* 0.5", "3 -"], ops  # was: "*" and "-", each with one input drawn: 3 - y read as y - ?


def test_draw_modules_draws_a_box_per_module_and_the_nodes_outside_them_with_their_edges():
    first, second = mg.nn.Linear(2, 2, seed=0), mg.nn.Linear(2, 1, seed=1)
    with mg.nn.tag_modules():
        out = second([h.tanh() for h in first([Value(1.0, "x0"), Value(2.0, "x1")])])[0]
    loss = (out - 1.0) ** 2
    loss.backward()
    source = viz.draw_modules(loss, [first, second, mg.nn.Linear(1, 1)], view="both").source
    boxes = {m: label.split("<BR/>")[1] for m, label in re.findall(r"^\s*(m\d) \[label=<(.*?)> ", source, re.M)}
    assert boxes == {"m0": "Linear, 6 params, 8 nodes", "m1": "Linear, 3 params, 4 nodes"}  # the unused third: none
    labels = {node: label for node, label in dot_nodes(source).items() if node.startswith("v")}
    fills = {node: re.search(r'BGCOLOR="(#\w+)"', label).group(1) for node, label in labels.items()}
    assert fills == {"v0": "#D6EAF8", "v1": "#D6EAF8", "v2": "#FFFFFF", "v3": "#FFFFFF", "v4": "#FFFFFF",
                     "v5": "#D5F5E3"}  # the inputs, the nodes made outside the modules, the output
    assert ">x1</TD>" in labels["v1"] and f">grad {viz.fmt(out.grad)}<" in labels["v4"] and ">grad 1<" in labels["v5"]
    ops = re.findall(r"^\s*(opv\d) \[label=<([^>]*)>", source, re.M)
    assert ops == [("opv2", "tanh"), ("opv3", "tanh"), ("opv4", "- 1"), ("opv5", "** 2")]
    edges = set(re.findall(r"^\s*(\w+ -> \w+)$", source, re.M))
    assert edges == {"v0 -> m0", "v1 -> m0", "m0 -> opv2", "m0 -> opv3", "opv2 -> v2", "opv3 -> v3", "v2 -> m1",
                     "v3 -> m1", "m1 -> opv4", "opv4 -> v4", "v4 -> opv5", "opv5 -> v5"}
    with pytest.raises(viz.GraphTooLarge, match=r"^draw_modules: 8 nodes to draw, more than max_nodes=7; collapse more"):
        viz.draw_modules(loss, [first, second], max_nodes=7)  # six nodes and two boxes
    with pytest.raises(ValueError, match=r"^draw_modules: no node of this graph was made inside one of the modules"):
        viz.draw_modules(loss, [mg.nn.Linear(1, 1)])


def test_animation_captions_put_a_label_that_is_no_plain_name_in_parentheses():
    a, b, c = Value(1.0, "a"), Value(2.0, "b"), Value(3.0, "c")
    s = a + b
    s.label = "a+b"
    out = s * c
    out.backward()
    equations = [step["equation"] for step in viz.animation_steps(out)]
    assert equations[1].startswith("(a+b)*c = 9;"), equations[1]  # was: "a+b*c = 9", which reads as 7


def test_a_label_with_a_direction_control_cannot_reorder_the_numbers_around_it():
    # U+202E (right-to-left override) in a label turned the rest of a caption around in the page:
    # "∂/∂(\u202eevil) = 1.5" showed as "∂/∂(5.1 = (live"
    a, b = Value(1.5, label="a\x00b"), Value(2.0, label="\u202eevil")
    y = a * b
    y.backward()
    step = viz.animation_steps(y)[0]
    assert step["equation"] == r"(a\x00b)*(\u202eevil) = 3; local derivatives: ∂/∂(a\x00b) = 2; ∂/∂(\u202eevil) = 1.5"
    assert r">\\u202eevil</TD>" in viz.draw_graph(y).source  # the picture writes it as the caption does (\ in DOT)


@needs_dot
@pytest.mark.parametrize("name", ["end\\", "\\N\\G", "<b>&amp;"])
def test_a_collapsed_neuron_named_with_a_backslash_or_an_entity_is_drawn_and_named_literally(name):
    class Net(mg.Module):
        nin = 2

        def __init__(self):
            super().__init__()
            setattr(self, name, mg.Neuron(2, activation="tanh", seed=0))

        def forward(self, x):
            return getattr(self, name)(x)

    out = Net()([Value(1.0, "x0"), Value(2.0, "x1")]) * 2
    out.backward()
    svg = viz.draw_graph(out, view="both", collapse=True).pipe(format="svg", encoding="utf-8")  # was: dot's syntax
    nodes, _, _ = parse_svg(svg)  # error, or a tooltip reading "v2computation graph" for \N\G, "<b>&" for <b>&amp;
    assert nodes["v2"][0] == f"{name} tanh", nodes
    titles = {a.get("{http://www.w3.org/1999/xlink}title") for a in ET.fromstring(svg).iter(f"{SVG}a")}
    assert titles == {"input", "neuron", "output"}, titles


@needs_dot
def test_mimebundle_shows_a_drawing_and_refuses_what_it_cannot_show():
    drawing = viz.draw_network(MLP(2, [2, 1], seed=0))
    bundle = viz.mimebundle(drawing)  # was: no picture, "draw_network: expected an MLP, ..., got Diagram"
    assert bundle["image/svg+xml"] == drawing.pipe(format="svg", encoding="utf-8")
    with pytest.raises(TypeError, match=r"^mimebundle: expected a Digraph, a Value or a Module, got str$"):
        viz.mimebundle("x")  # was: text naming draw_network, which it had never been given


def test_collapse_names_a_box_for_a_neurons_inner_node_by_its_op():
    n = mg.Neuron.from_weights([0.6, 0.3], 0.1, activation="tanh")
    out = n([Value(1.0, "x0"), Value(2.0, "x1")])
    loss = out + out.inputs[0]  # the neuron's output and its weighted sum, both used outside it
    loss.backward()
    source = viz.draw_graph(loss, collapse=True).source
    boxes = re.findall(r'_label"[^>]*>([^<]*)</TD><TD ID="v\d+_data"[^>]*>data ([^<]*)<', source)
    # was: both boxes read "neuron tanh", the weighted sum's 1.3 as if a tanh's output
    assert boxes[2:] == [("neuron Σ w·x + b", "1.3"), ("neuron tanh", "0.8617")], boxes


def test_collapse_draws_each_call_of_a_neuron_fed_its_own_output():
    n = mg.Neuron.from_weights([0.5, -0.3], 0.1, activation="tanh")
    y1 = n([Value(0.2, "y0"), Value(1.0, "x1")])
    y2 = n([y1, Value(2.0, "x2")])  # a recurrence: y = n([y, x])
    source = viz.draw_graph(y2, collapse=True).source
    boxes = re.findall(r'>neuron tanh</TD><TD ID="(v\d+)_data"[^>]*>data ([^<]*)<', source)
    # was: one box, the second call's, with y0, x1 and x2 all drawn straight into it
    assert [data for _, data in boxes] == [viz.fmt(y1.data), viz.fmt(y2.data)], boxes
    ids = dict(re.findall(r'<TD ID="(v\d+)_label"[^>]*>(\w+)</TD>', source))
    names = {**{vid: name for vid, name in ids.items()}, boxes[0][0]: "y1", boxes[1][0]: "y2"}
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(v\d+) -> (v\d+) ", source, re.M)}
    assert edges == {("y0", "y1"), ("x1", "y1"), ("y1", "y2"), ("x2", "y2")}, edges


def test_collapse_draws_a_node_two_calls_of_a_neuron_share_as_its_own_box():
    n = mg.Neuron.from_weights([0.6, 0.3], 0.1, activation="tanh", fused=False)
    a = n([Value(1.0, "x0"), Value(2.0, "x1")])
    product = a.inputs[0].inputs[0].inputs[1]  # w0 * x0, inside the first call
    b = n([product * 1.5, Value(3.0, "x2")])  # and, through * 1.5, in the second
    source = viz.draw_graph(a + b, collapse=True).source
    names = {vid: f"{label} {data}" for vid, label, data in
             re.findall(r'<TD ID="(v\d+)_label"[^>]*>([^<]*)</TD><TD ID="v\d+_data"[^>]*>data ([^<]*)<', source)}
    edges = {(names[x], names[y]) for x, y in re.findall(r"^\s*(v\d+) -> (v\d+) ", source, re.M)}
    # was: the product folded into both boxes, x0 drawn straight into the second call's box (which never read it)
    assert edges == {("x0 1", "neuron * 0.6"), ("x1 2", "neuron tanh 0.8617"), ("neuron * 0.6", "neuron tanh 0.8617"),
                     ("x2 3", "neuron tanh 0.9121"), ("neuron * 0.6", "neuron tanh 0.9121")}, edges


@needs_dot
def test_notebook_title_of_a_collapsed_batch_says_each_call_is_a_node():
    model = MLP(2, [8, 8, 1], seed=0)
    loss = model([0.1, 0.2]) + model([0.3, 0.4])  # two samples: two boxes for each neuron
    svg = viz.mimebundle(loss)["image/svg+xml"]
    nodes, _, _ = parse_svg(svg)
    assert sum(texts[0] == "layers.2.neurons.0 linear" for texts in nodes.values()) == 2
    title = ET.fromstring(svg).find(f"{SVG}g").find(f"{SVG}text").text
    assert title.startswith("collapsed: each call of a neuron is one node ("), title  # was: "each neuron is one node"


def test_animation_captions_put_a_node_named_by_its_op_in_parentheses():
    a, b = Value(2.0, "a"), Value(3.0, "b")
    long = (a + b) * (a - b) + a * b * a * b + b * b  # too long a name: "the + node"
    out = a * long
    out.backward()
    equations = [step["equation"] for step in viz.animation_steps(out)]
    assert "a*(the + node) = 80; local derivatives: ∂/∂a = 40; ∂/∂(the + node) = 2" in equations, equations
    # was: "a*the + node = 80", which reads as a*the, plus node


@needs_dot
def test_notebook_advises_no_call_that_a_too_tangled_graph_refuses():
    n = mg.Neuron(2, "tanh", seed=0)
    c, y = Value(0.5, "c"), Value(0.0, "h0")
    for _ in range(60):
        y = n([y, c])  # c used again at every step: in full too tangled for dot, collapsed drawable
    with pytest.raises(viz.GraphTooLarge, match="ranks"):
        viz.draw_graph(y, max_nodes=10_000)
    title = ET.fromstring(viz.mimebundle(y)["image/svg+xml"]).find(f"{SVG}g").find(f"{SVG}text").text
    # was: "(245 nodes in full; viz.draw_graph(v, max_nodes=245) draws them all)", a call refused as above
    assert title == "collapsed: each call of a neuron is one node (in full too tangled for dot)", title
    for _ in range(90):
        y = n([y, c])  # too tangled collapsed too
    text = viz.mimebundle(y)["text/plain"]
    assert "draws it anyway" not in text and "ranks (columns)" in text, text  # was: max_nodes=605 "draws it anyway"


def test_animate_network_writes_the_target_as_it_writes_every_number(tmp_path):
    # target=[1.0] read "(0.249 - [1.0])²" (an array: "array([1.])"), np.float32(0.1) "target 0.10000000149011612"
    # and True "target True" in the caption, the loss box and the title
    net = MLP(2, [3, 1], seed=0)
    for target, shown in (([1.0], "1"), (np.array([1.0]), "1"), (np.float32(0.1), "0.1"), (True, "1")):
        path = viz.animate_network(net, [0.5, 1.0], tmp_path / "n.html", target=target, overwrite=True)
        loss = next(s for s in page_steps(path) if s["title"] == "Loss · mse")
        assert f"- {shown})²" in loss["equation"] and loss["caption"].startswith(f"The loss measures how far the "
                                                                                  f"prediction is from the target {shown};")
        assert loss["boxes"]["loss"][2] == f"target {shown}"
        text = open(path, encoding="utf-8").read()
        assert f"<title>MLP(2 -&gt; 3 relu -&gt; 1 linear, 13 parameters) on input x = [0.5, 1], target {shown}" in text
        assert f">target {shown}</text>" in text
    several = MLP(2, [3, 2], seed=0)
    path = viz.animate_network(several, [0.5, 1.0], tmp_path / "n.html", target=np.array([1]), loss="cross_entropy",
                               overwrite=True)
    assert "target 1)" in next(s for s in page_steps(path) if s["title"] == "Loss · cross_entropy")["equation"]


def test_animation_backward_captions_count_uses_and_ask_for_every_grad_but_the_outputs():
    x = Value(2.0, label="x")
    y = x * 3
    y.label = "y"
    z = y * y + x
    z.label = "z"
    z.backward()
    grads = {s["title"]: s for s in viz.animation_steps(z) if s["kind"] == "grad"}
    assert grads["Backward: grad of y*y"]["caption"].startswith("Chain rule: y*y is used 1 time; each use adds")
    assert grads["Backward: grad of y"]["caption"].startswith("Chain rule: y is used 2 times; each use adds")
    assert grads["Backward: grad of z"]["ask"] is None  # the output's grad is given, not worked out
    assert [(s["ask"]["question"], s["ask"]["value"]) for t, s in grads.items() if t != "Backward: grad of z"] == [
        ("What is the grad of y*y?", 1.0), ("What is the grad of y?", 12.0), ("What is the grad of x?", 37.0)]


def test_animation_captions_group_powers_from_the_right():
    x, y = Value(1.5, label="x"), Value(2.0, label="y")
    left, right = (x ** 2) ** 3, x ** (y ** 2)
    for out in (left, right):
        out.backward()
    assert viz.animation_steps(left)[1]["equation"].startswith("(x ** 2) ** 3 = 11.39;")
    assert viz.animation_steps(right)[1]["equation"].startswith("x ** y ** 2 = 5.062;")


def test_animations_draw_at_most_300_nodes_unless_told(tmp_path):
    def chain(k):  # 2k + 1 nodes: x and each tanh's value and op
        y = Value(0.1, label="x")
        for _ in range(k):
            y = y.tanh()
        y.backward()
        return y
    assert len(viz.animation_steps(chain(149))) == 299
    for call in (lambda: viz.animation_steps(chain(150)), lambda: viz.animate(chain(150), tmp_path / "a.html")):
        with pytest.raises(viz.GraphTooLarge, match=r"the graph has 301 nodes to draw, more than max_nodes=300;"):
            call()


def test_animation_captions_write_an_expression_of_up_to_28_characters_out():
    def title(b_label):
        out = Value(2.0, label="a" * 13) * Value(3.0, label=b_label)
        out.backward()
        return viz.animation_steps(out)[0]["title"]
    assert title("b" * 14) == "Forward: aaaaaaaaaaaaa*bbbbbbbbbbbbbb"  # 28 characters
    assert title("b" * 15) == "Forward: the * node"


def test_animation_captions_group_every_compound_operand_of_an_infix_op_of_ones_own():
    # an Op(infix=True) has no known precedence: (x + y) @ z read "x + y @ z", which reads as x + (y @ z)
    at = mg.Op("at", lambda a, b: a * b + 1, [lambda a, b, out: b, lambda a, b, out: a], infix=True, symbol="@")
    x, y, z = Value(2.0, label="x"), Value(3.0, label="y"), Value(1.0, label="z")
    written = {}
    for expected, out in (("(x + y) @ z", at(x + y, z)), ("x @ (y*z)", at(x, y * z)),
                          ("(x @ y) @ z", at(at(x, y), z)), ("(x @ y) + z", at(x, y) + z)):
        out.backward()
        written[expected] = [s["title"] for s in viz.animation_steps(out) if s["kind"] == "data"][-1]
    assert written == {expected: f"Forward: {expected}" for expected in written}


@pytest.mark.parametrize("who", ["animate", "animation_steps"])
def test_animation_of_a_grad_set_by_hand_to_no_finite_number_says_so(tmp_path, who):
    # x.grad = nan gave "ValueError: cannot convert float NaN to integer" from inside the quiz's tolerance
    for bad, error, got in ((float("nan"), ValueError, "nan"), (float("inf"), ValueError, "inf"),
                            ("a", TypeError, "'a'")):
        x = Value(2.0, label="x")
        y = x * 3
        y.backward()
        x.grad = bad
        path = tmp_path / "a.html"
        with pytest.raises(error, match=rf"^{who}: the grad of x must be a finite number, got {got} "):
            viz.animate(y, path) if who == "animate" else viz.animation_steps(y)
        assert not path.exists()


def test_animation_quiz_takes_answers_within_one_unit_of_the_fourth_significant_digit():
    a, b = Value(0.5, label="a"), Value(0.0, label="b")
    c = a * b
    d = c + a
    d.backward()
    tolerances = {s["title"]: s["ask"]["tol"] for s in viz.animation_steps(d) if s["ask"]}
    assert tolerances == pytest.approx({"Forward: a*b": 5e-5, "Forward: a*b + a": 1e-4, "Backward: grad of a*b": 1e-3,
                                        "Backward: grad of b": 1e-4, "Backward: grad of a": 1e-3}, rel=1e-12)


def test_animate_network_lights_each_edge_as_wide_as_its_share_of_the_largest(tmp_path):
    # an edge of w·x (forward) or ∂L/∂w (backward) is 1 + 5 × |its number| / the largest of the neuron's wide,
    # blue for >= 0 and red below, labelled part way along
    net = MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)]),
                           mg.Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])
    steps = page_steps(viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", target=1.0))
    blue, red = "#2E86C1", "#C0392B"
    assert steps[0]["lit"] == {"L0N0-L1N0": [blue, "6.00", "x0·w = 0.5", 0.45],
                               "L0N1-L1N0": [red, "3.00", "x1·w = -0.2", 0.45]}
    backward = next(s for s in steps if s["title"] == "Backward · layer 1 (sigmoid), neuron n0: ∂L/∂w for each incoming edge")
    assert backward["lit"] == {"L1N0-L2N0": [red, "6.00", "∂L/∂w = -0.144", 0.5],
                               "L1N1-L2N0": [red, "4.75", "∂L/∂w = -0.108", 0.5],
                               "L1N2-L2N0": [red, "1.63", "∂L/∂w = -0.018", 0.5]}
    # the weights an output's gradient flows back through: 0.5 + 3.5 × |w| / the network's largest |w| (0.8)
    back = next(s for s in steps if s["title"] == "Backward · layer 0 (relu), neuron n2: ∂L/∂out")
    assert back["lit"] == {"L1N2-L2N0": [red, "2.69", "w = -0.5", 0.72]}
    assert back["equation"].startswith("∂L/∂out = Σ w × ∂L/∂raw over layer 1 = (-0.5) × ")
    assert back["caption"].startswith("n2's output feeds every neuron of layer 1: its gradient is the sum")


def test_animate_network_names_an_unknown_loss_and_the_ones_it_knows(tmp_path):
    with pytest.raises(ValueError, match=r"^animate_network: unknown loss 'nope'; choose one of mse, .*binary_cross_entropy"):
        viz.animate_network(MLP(2, [3, 1], seed=0), [1.0, 0.5], tmp_path / "n.html", target=1.0, loss="nope")
    assert not (tmp_path / "n.html").exists()


def test_animate_network_starts_with_every_neuron_unknown(tmp_path):
    # the diagram is drawn with this input's activations: the page must hide each neuron's until its step
    text = open(viz.animate_network(MLP(2, [3, 1], seed=0), [1.0, 0.5], tmp_path / "n.html"), encoding="utf-8").read()
    initial = json.loads(re.search(r"^const INITIAL = (.*);$", text, re.M).group(1))
    assert initial["nodes"] == {nid: ["?", "#F2F2F2", "#000000"] for nid in ("L1N0", "L1N1", "L1N2", "L2N0")}
    assert initial["boxes"] == {"prediction": ["prediction", "?", ""]}
