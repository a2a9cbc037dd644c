"""Pictures of computation graphs and networks, laid out by Graphviz (the `graphviz` package).

graph: `draw_graph`; modules: `draw_modules` (modules as boxes); network: `draw_network`;
animation: `animate` (an HTML page);
record: `record` (every pass of a training loop); files: `save`; notebook: what Jupyter
shows for Values and Modules; format: what they share (Diagram, colours, label formatting).
`tree` (the graph as text) lives with the engine and is re-exported here.
"""
from microgradnn.viz.animation import animate, animation_steps
from microgradnn.engine import tree
from microgradnn.viz.files import FORMATS, save
from microgradnn.viz.format import MAX_NODES, Diagram, GraphTooLarge, GraphvizNotFound, fmt
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.modules import draw_modules
from microgradnn.viz.network import draw_network
from microgradnn.viz.notebook import mimebundle, register
from microgradnn.viz.record import record

register()  # inside IPython or Jupyter: Values and Modules show as pictures

__all__ = ["draw_graph", "draw_modules", "draw_network", "record", "animate", "animation_steps", "save", "tree",
           "mimebundle",
           "fmt", "register", "GraphvizNotFound", "GraphTooLarge", "Diagram", "FORMATS", "MAX_NODES"]
