"""Regenerate the pictures in README.md (docs/images/): python3 scripts/readme_pictures.py

The animation frames are screenshots by headless Chromium under Playwright (pip install playwright;
the system's chromium, never a downloaded one)."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's microgradnn

import microgradnn as mg  # noqa: E402
from microgradnn import viz  # noqa: E402
from microgradnn.cli import lesson_network  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "images")
os.makedirs(HERE, exist_ok=True)

# The README's neuron: o = tanh(x1*w1 + x2*w2 + b), drawn unfused so every op shows.
x1, x2 = mg.Value(2.0, label="x1"), mg.Value(0.0, label="x2")
w1, w2 = mg.Value(-3.0, label="w1"), mg.Value(1.0, label="w2")
b = mg.Value(6.8813735870195432, label="b")
o = (x1 * w1 + x2 * w2 + b).tanh()
o.label = "o"
viz.save(viz.draw_graph(o, view="forward"), os.path.join(HERE, "forward.svg"), overwrite=True)
o.backward()
viz.save(viz.draw_graph(o, view="backward"), os.path.join(HERE, "backward.svg"), overwrite=True)

# The lesson's 2 -> 3 -> 1 network, lit up by the input [1.0, 0.5].
net = lesson_network()
viz.save(viz.draw_network(net, [1.0, 0.5]), os.path.join(HERE, "network.svg"), overwrite=True)

# Frames of the two animations.
folder = tempfile.mkdtemp()
graph_page = viz.animate(o, os.path.join(folder, "anim.html"))
network_page = viz.animate_network(net, [1.0, 0.5], os.path.join(folder, "net.html"), target=1.0)
quiz_page = viz.animate_network(net, [1.0, 0.5], os.path.join(folder, "quiz.html"), target=1.0, quiz=True)
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None
if chromium and sync_playwright:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1100, "height": 420})
        page.goto(Path(graph_page).as_uri() + "#step=9")
        page.screenshot(path=os.path.join(HERE, "animation.png"))
        page.set_viewport_size({"width": 800, "height": 640})
        page.goto(Path(network_page).as_uri() + "#step=14")
        page.screenshot(path=os.path.join(HERE, "network_animation.png"))
        page.goto(Path(quiz_page).as_uri())
        for answer in ("0.4", "0.5"):
            page.keyboard.press("ArrowRight")
            page.fill("#answer", answer)
            page.press("#answer", "Enter")
        page.set_viewport_size({"width": 800, "height": 330})
        page.screenshot(path=os.path.join(HERE, "quiz.png"))
        # The playground after 60 epochs on moons, one point clicked (training is seeded, so the
        # picture is the same on every run).
        with viz.playground(open_browser=False) as pg:
            for _ in range(60):
                pg.session.train_epoch()
            page.set_viewport_size({"width": 1400, "height": 1010})
            page.goto(pg.url)
            page.wait_for_selector("body[data-ready='1']")
            page.mouse.click(*page.evaluate("playground.pointPixel(7)"))
            page.wait_for_selector("#point-graph svg")
            page.click("#network g#L3N0")  # the output neuron: its bias and gradient
            page.wait_for_timeout(500)
            page.screenshot(path=os.path.join(HERE, "playground.png"))
        browser.close()
else:
    print("no chromium or playwright: animation screenshots not updated")
shutil.rmtree(folder)
print("wrote", sorted(os.listdir(HERE)))
