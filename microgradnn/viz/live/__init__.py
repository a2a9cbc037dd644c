"""The playground: live training in the browser, served by the standard library, driven by the engine.

config: the settings, checked, and the data they make; session: model, training and what the page
polls; script: the downloadable Python script; server: the HTTP server, its safety checks and
`playground()` / `serve()`; static/: the page (plain HTML, JS and CSS, no build step).
"""
from microgradnn.viz.live.server import Playground, PlaygroundServer, playground, serve
from microgradnn.viz.live.config import DEFAULTS, LIMITS, ConfigError
from microgradnn.viz.live.session import Session

__all__ = ["playground", "serve", "Playground", "PlaygroundServer", "Session", "ConfigError", "DEFAULTS", "LIMITS"]
