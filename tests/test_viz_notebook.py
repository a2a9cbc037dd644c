"""What a person sees in Jupyter: a notebook built here, run by a real kernel (nbclient and ipykernel,
on this interpreter), then exported to HTML (nbconvert) and opened in headless Chromium. Screenshots
go to $MICROGRADNN_SCREENSHOTS when set, else tmp_path."""
import base64
import html
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from importlib.util import find_spec
from pathlib import Path

import pytest

import microgradnn as mg
from conftest import needs_dot

nbformat = pytest.importorskip("nbformat", reason="pip install nbformat (the test extra)")
nbclient = pytest.importorskip("nbclient", reason="pip install nbclient (the test extra)")
pytest.importorskip("ipykernel", reason="pip install ipykernel (the test extra)")
pytestmark = needs_dot

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SVG = "{http://www.w3.org/2000/svg}"
BAR = find_spec("tqdm") is not None and find_spec("ipywidgets") is not None  # fit shows a notebook bar

CELLS = {  # name: source; each cell's outputs are checked by name
    "import": "import microgradnn as mg\nfrom microgradnn import viz\nimport sys\nprint(sys.executable, mg.__file__)",
    "value": "x1, x2 = mg.Value(2.0, label='x1'), mg.Value(0.0, label='x2')\n"
             "w1, w2 = mg.Value(-3.0, label='w1'), mg.Value(1.0, label='w2')\n"
             "b = mg.Value(6.8813735870195432, label='b')\n"
             "o = (x1 * w1 + x2 * w2 + b).tanh()\no.label = 'o'\no.backward()\no",
    "module": "net = mg.MLP(2, [3, 1], seed=0)\nnet",
    "drawing": "viz.draw_graph(o)",
    # the README's own example, as written
    "page": README.split("## In a notebook")[1].split("```python\n")[1].split("```")[0],
    "fit": "X, y = mg.data.xor()\nhistory = mg.fit(mg.MLP(2, [4, 1], 'tanh', seed=0), X, y, 'mse', 'sgd', epochs=20)",
    "fit without widgets": "sys.modules['ipywidgets'] = None  # as if not installed: tqdm's bar would go to stderr\n"
                        "history = mg.fit(mg.MLP(2, [4, 1], 'tanh', seed=0), X, y, 'mse', 'sgd', epochs=20)",
    "playground": "pg = viz.playground()\npg",
    "playground serves": "import urllib.request\nwith urllib.request.urlopen(pg.url, timeout=10) as r:\n"
                         "    print(r.status, '<html' in r.read().decode().lower())\npg.stop()",
}


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The notebook of CELLS, executed by a kernel on this interpreter (sys.executable: the .venv's
    under scripts/run, not whichever `python3` a Jupyter install would find) importing this checkout."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    folder = tmp_path_factory.mktemp("notebook")
    spec = folder / "kernels" / "here"
    spec.mkdir(parents=True)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)[:1]),
           "IPYTHONDIR": str(folder / "ipython"), "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "microgradnn tests", "language": "python", "env": env}))
    km = KernelManager(kernel_name="here", connection_file=str(folder / "kernel.json"),
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder / "kernels")],
                                                             ensure_native_kernel=False))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata={"name": name})
                                         for name, src in CELLS.items()])
    nbclient.NotebookClient(nb, km=km, timeout=60, startup_timeout=60,
                            resources={"metadata": {"path": str(folder)}}).execute()
    return nb, folder


def outputs(nb, name: str) -> list:
    return next(cell.outputs for cell in nb.cells if cell.metadata["name"] == name)


def svg_texts(svg: str) -> list[str]:
    return [t.text for t in ET.fromstring(svg.encode()).iter(f"{SVG}text")]


def test_a_real_notebook_shows_graphs_diagrams_pages_and_progress_inline(notebook):
    nb, folder = notebook
    for cell in nb.cells:  # nothing raised, nothing on stderr (a red box that looks like an error)
        streams = [o.get("name") for o in cell.outputs if o.output_type in ("stream", "error")]
        assert "stderr" not in streams and all(o.output_type != "error" for o in cell.outputs), (cell.source, cell.outputs)
    (out,) = outputs(nb, "import")
    assert out.text.split() == [sys.executable, mg.__file__]  # the kernel is this interpreter, on this checkout

    (value,) = outputs(nb, "value")  # a Value at the end of a cell: its graph, with its numbers
    assert value.output_type == "execute_result" and set(value.data) == {"text/plain", "image/svg+xml"}
    assert value.data["text/plain"] == "Value(data=0.7071, grad=1, label='o')"
    texts = svg_texts(value.data["image/svg+xml"])
    assert {"x1", "w1", "data 2", "grad -1.5", "data -3", "grad 1", "data 0.7071"} <= set(texts), texts
    (module,) = outputs(nb, "module")  # an MLP: its network diagram
    assert set(module.data) == {"text/plain", "image/svg+xml"}
    assert {"n0", "n1", "n2", "x0", "x1"} <= set(svg_texts(module.data["image/svg+xml"]))
    (drawing,) = outputs(nb, "drawing")
    assert "data 0.7071" in svg_texts(drawing.data["image/svg+xml"])

    (page,) = outputs(nb, "page")  # was: a UserWarning from IPython's HTML on stderr before it
    assert page.output_type == "execute_result" and page.data["text/html"].count("<iframe") == 1
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', page.data["text/html"])[1])
    assert srcdoc == (folder / "network.html").read_text()  # the whole page, in its own frame

    fit = outputs(nb, "fit")
    if BAR:  # tqdm's notebook bar, finished: the widget's state saved with the notebook
        assert [o.output_type for o in fit] == ["display_data"]
        assert "application/vnd.jupyter.widget-view+json" in fit[0].data
        state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        (bar,) = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
        assert bar["value"] == bar["max"] == 20
        assert any("20/20" in m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel")
    plain = outputs(nb, "fit without widgets")  # one line on stdout, redrawn in place, at most every 0.1 s
    text = "".join(o.text for o in plain)  # a notebook joins a cell's stream outputs
    assert {o.name for o in plain} == {"stdout"} and 2 <= text.count("\r") < 20 and "\repoch  1/20" in text
    assert text.endswith("\n") and text.split("\r")[-1].startswith("epoch 20/20  loss 0.2159  accuracy  75.0%")

    (pg,) = outputs(nb, "playground")  # the live page in a frame, from the server in the kernel
    url = re.fullmatch(r"Playground\((.*)\)", pg.data["text/plain"])[1]
    assert f'<iframe src="{url}"' in pg.data["text/html"]
    assert [o.text for o in outputs(nb, "playground serves")] == ["200 True\n"]


def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MICROGRADNN_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_the_notebook_exported_to_html_shows_the_pictures_in_chromium(notebook, browser, tmp_path):
    nbconvert = pytest.importorskip("nbconvert", reason="pip install nbconvert (the test extra)")
    from conftest import new_page
    nb, _ = notebook
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    (tmp_path / "notebook.html").write_text(body)
    page = new_page(browser, 1000, 800)
    try:
        # no network: the export's CDN scripts (require.js, MathJax, the widgets' manager) and the
        # playground, whose server stopped with the kernel, answer empty
        page.context.route(lambda url: not url.startswith("file:"),
                           lambda route: route.fulfill(status=200, body="", content_type="text/javascript"))
        page.goto((tmp_path / "notebook.html").as_uri())
        cells = page.locator(".jp-CodeCell")
        assert cells.count() == len(CELLS)
        names = list(CELLS)
        for name, numbers in [("value", ["data 0.7071", "grad -1.5"]), ("module", ["n2"]), ("drawing", ["data 0.7071"])]:
            img = cells.nth(names.index(name)).locator(".jp-RenderedSVG img")
            box = img.bounding_box()
            assert box and box["width"] > 100 and 50 < box["height"] < 800, (name, box)
            loaded = img.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight, i.getAttribute('src')]")
            assert loaded[0] and loaded[1] > 100 and loaded[2] > 50, name  # the SVG decoded and drawn
            svg = base64.b64decode(loaded[3].split(",", 1)[1]).decode()
            assert set(numbers) <= set(svg_texts(svg)), name
        graph = cells.nth(names.index("value")).locator(".jp-OutputArea-output").last
        assert graph.evaluate("o => o.scrollWidth + 1 >= o.querySelector('img').getBoundingClientRect().width")
        assert page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0
        frame = next(f for f in page.frames if f.url == "about:srcdoc")  # the README's page works inline
        frame.click("#next")
        assert frame.evaluate("document.body.dataset.step") == "1"
        shot = shots(tmp_path) / "notebook.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
        assert not page.errors, page.errors
    finally:
        page.context.close()


def test_the_notebook_text_of_a_graph_too_large_collapsed_reads_as_a_sentence():
    # was: "the graph has 301 with each call of a neuron as one node nodes to draw"
    neuron, y = mg.Neuron(2, "tanh", seed=0), mg.Value(0.1)
    for _ in range(150):
        y = neuron([y, mg.Value(0.5)])
    text = mg.viz.mimebundle(y)["text/plain"]
    assert "(no picture: the graph has 301 nodes to draw with each call of a neuron as one node, more than the 150 " \
           "a notebook draws; viz.draw_graph(v, collapse=True, max_nodes=301) at the end" in text
