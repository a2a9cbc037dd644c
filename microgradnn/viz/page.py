"""What the animation pages share: the page style, the controls, the step player
(`player.js`), safe embedding of data in a <script>, and writing the page."""
from __future__ import annotations

import html
import json
import math
import os
import string
from importlib import resources

from microgradnn._files import check_writable, extension, user_path, write_atomic
from microgradnn.engine import fmt
from microgradnn.viz.format import _visible

STYLE = """\
body { font-family: Helvetica, Arial, sans-serif; margin: 10px 12px; color: #222; font-size: 16px; }
h1 { font-size: 20px; margin: 4px 0 10px; }
h1, #text, #quiz { overflow-wrap: anywhere; }  /* a long unbroken label wraps instead of widening the page */
#controls { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
button { font-size: 15px; min-width: 38px; padding: 3px 8px; }
#slider { width: 260px; max-width: 50vw; }
#counter, #zoomlevel, #score { font-size: 14px; color: #444; }
#text { margin: 10px 0; min-height: 4.4em; max-width: 60em; }
#title { font-weight: bold; font-size: 16px; min-height: 1.2em; }
#caption { font-size: 16px; margin-top: 3px; }
#equation { font-family: Menlo, Consolas, monospace; font-size: 15px; margin-top: 5px; color: #0B5345;
            overflow-wrap: anywhere; }
#quiz { border: 1px solid #D5D8DC; border-radius: 6px; padding: 8px 10px; margin: 8px 0; max-width: 60em;
        background: #FBFCFC; }
#quiz[hidden] { display: none; }
#question { font-weight: bold; margin-bottom: 6px; }
#answer { font-size: 16px; width: 9em; }
#feedback { margin-top: 6px; font-size: 15px; }
#feedback.right { color: #1E8449; }
#feedback.wrong { color: #B03A2E; }
#graph { overflow: auto; border-top: 1px solid #EEE; }
#graph svg { display: block; }
"""

CONTROLS = """\
<div id="controls">
<button id="first" title="first step (Home)">|&#x25C0;</button>
<button id="prev" title="step back (Left)">&#x25C0;</button>
<button id="play" title="play (Space)">&#x25B6;</button>
<button id="next" title="step forward (Right)">&#x25B6;&#x25B6;</button>
<input id="slider" type="range" min="0" max="0" value="0" aria-label="step">
<span id="counter"></span>
<button id="zoomout" title="smaller (never below 100%)">&#x2212;</button><span id="zoomlevel">100%</span>
<button id="zoomin" title="larger">+</button>
<span id="score"></span>
</div>
<div id="text"><div id="title"></div><div id="caption"></div><div id="equation"></div></div>
<div id="quiz" hidden><div id="question"></div>
<input id="answer" type="text" inputmode="decimal" autocomplete="off" aria-label="your answer">
<button id="check">Check</button> <button id="reveal">Reveal</button>
<div id="feedback"></div></div>
"""


def script_json(obj) -> str:
    """JSON safe inside <script>: no `<`, `>`, `&` or line separators as themselves, so no text
    (`</script>`, `<!--`) can end the script or change how the page parses."""
    text = json.dumps(obj, allow_nan=False)  # ASCII only: line separators and lone surrogates come out escaped
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text


def ask(question: str, value: float) -> dict:
    """A quiz question whose answer is `value`, checked to the 4 significant digits pictures show
    (within one unit of the fourth digit, so a hand computation from shown numbers passes)."""
    tol = 10.0 ** (math.floor(math.log10(abs(value))) - 3) if value else 5e-5
    return {"question": question, "value": value, "tol": tol, "shown": fmt(value),
            "precision": "4 significant digits"}


def inline_svg(svg: str) -> str:
    """An SVG document as an element to put inside HTML: no XML prolog or doctype."""
    return svg[svg.index("<svg"):]


EXTENSIONS = (".html", ".htm")


def page_path(path: str | os.PathLike, overwrite: bool, who: str) -> str:
    """The path to write a page to, checked before any work: named .html or .htm (a page is HTML,
    whatever a name like `p.svg` says), and writable now (see `check_writable`)."""
    path = user_path(path, who)
    extension(path, EXTENSIONS, who, f"{who} writes an HTML page: use {' or '.join(EXTENSIONS)}")
    return check_writable(path, overwrite, who)


def write_page(template_name: str, path: str, *, title: str, overwrite: bool, who: str, **fields: str) -> str:
    """Fill the template `template_name` (package data) and write it atomically to `path`
    (replacing a file there only with `overwrite`; errors say `who` failed)."""
    template = string.Template(resources.files(__package__).joinpath(template_name).read_text("utf-8"))
    player = resources.files(__package__).joinpath("player.js").read_text("utf-8")
    page = template.substitute(title=html.escape(_visible(title)), style=STYLE, controls=CONTROLS, player=player,
                               **fields)
    write_atomic(path, page.encode(), overwrite=overwrite, who=who)
    return path
