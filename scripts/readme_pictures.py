"""Regenerate the pictures in README.md (docs/images/): python3 scripts/readme_pictures.py"""
import os
import subprocess
import tempfile
import shutil

import microgradnn as mg
from microgradnn import viz

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
net = mg.MLP.from_layers([
    mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)], "relu"),
    mg.Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])
viz.save(viz.draw_network(net, [1.0, 0.5]), os.path.join(HERE, "network.svg"), overwrite=True)

# A frame of the animation, screenshotted by headless Chromium at step 9.
page = os.path.join(tempfile.mkdtemp(), "anim.html")
viz.animate(o, page)
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if chromium:
    profile = tempfile.mkdtemp()
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--window-size=1100,420",
                    f"--screenshot={os.path.join(HERE, 'animation.png')}", f"file://{page}#step=9"],
                   check=True, capture_output=True, timeout=120)
print("wrote", sorted(os.listdir(HERE)))
