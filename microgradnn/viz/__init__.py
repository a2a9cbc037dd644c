"""Pictures of computation graphs and networks, laid out by Graphviz (the `graphviz` package).

graph: `draw_graph`; network: `draw_network`; animation: `animate` (an HTML page);
record: `record` (every pass of a training loop); files: `save`, `tree` and notebook display;
format: what they share (Diagram, colours, label formatting).
"""
from microgradnn.viz.animation import animate, animation_steps
from microgradnn.viz.files import FORMATS, mimebundle, save, tree
from microgradnn.viz.format import MAX_NODES, Diagram, GraphTooLarge, GraphvizNotFound, fmt
from microgradnn.viz.graph import _plan, draw_graph
from microgradnn.viz.network import draw_network
from microgradnn.viz.record import record

__all__ = ["draw_graph", "draw_network", "record", "animate", "animation_steps", "save", "tree", "mimebundle",
           "fmt", "GraphvizNotFound", "GraphTooLarge", "Diagram", "FORMATS", "MAX_NODES"]
