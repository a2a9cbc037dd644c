"""The playground: live training in the browser, served by the standard library, driven by the engine.

session: configuration, data, model and training; server: the HTTP server, its safety checks
and `playground()` / `serve()`; static/: the page (plain HTML, JS and CSS, no build step).
"""
from microgradnn.viz.live.server import Playground, PlaygroundServer, playground, serve
from microgradnn.viz.live.session import DEFAULTS, LIMITS, ConfigError, Session

__all__ = ["playground", "serve", "Playground", "PlaygroundServer", "Session", "ConfigError", "DEFAULTS", "LIMITS"]
