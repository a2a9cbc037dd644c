"""Pictures of computation graphs and networks, laid out by Graphviz (the `graphviz` package).

graph: `draw_graph`; modules: `draw_modules` (modules as boxes); network: `draw_network`;
animation: `animate` (an HTML page); network_animation: `animate_network` (a network computing,
as a page); page: what pages share; live: `playground` (live training in the browser, on a local
server); record: `record` (every pass of a training loop); files: `save`, and `refusal` (which
files a demo run may replace); notebook: what Jupyter shows for Values and Modules; format: what
they share (Diagram, colours, label formatting).
`tree` (the graph as text) lives with the engine and is re-exported here.
"""
from typing import TYPE_CHECKING

from microgradnn.viz.animation import animate, animation_steps
from microgradnn.engine import tree
from microgradnn.viz.files import FORMATS, save
from microgradnn.viz.format import MAX_NODES, Diagram, GraphTooLarge, GraphvizNotFound, fmt
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.modules import draw_modules
from microgradnn.viz.network import draw_network
from microgradnn.viz.network_animation import animate_network
from microgradnn.viz.notebook import mimebundle, register
from microgradnn.viz.record import record

if TYPE_CHECKING:
    from microgradnn.viz.live.server import Playground


def playground(port: int = 0, host: str = "127.0.0.1", *, open_browser: bool | None = None,
               config: dict | None = None) -> "Playground":
    """Start the playground (live training in the browser) in the background; returns it with `.url`
    and `.stop()`, shown inline in Jupyter. See `microgradnn.viz.live.server.playground`."""
    from microgradnn.viz.live.server import playground as start  # the HTTP server loads only when used
    return start(port, host, open_browser=open_browser, config=config)


register()  # inside IPython or Jupyter: Values and Modules show as pictures

__all__ = ["draw_graph", "draw_modules", "draw_network", "playground", "record", "animate", "animate_network",
           "animation_steps", "save", "tree", "mimebundle",
           "fmt", "register", "GraphvizNotFound", "GraphTooLarge", "Diagram", "FORMATS", "MAX_NODES"]
