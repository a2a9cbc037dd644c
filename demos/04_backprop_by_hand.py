"""Backprop through one neuron by hand, next to backward(), with the rendered graphs.

o = tanh(x1*w1 + x2*w2 + b). By the chain rule, with n the pre-activation:
    do/dn  = 1 - o**2
    do/dwi = do/dn * xi,   do/dxi = do/dn * wi,   do/db = do/dn

Run: python demos/04_backprop_by_hand.py [--out DIR] [--overwrite]
"""
import argparse
import os

from microgradnn import Value, viz

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="out", help="folder for the pictures (default out/, the demos' own)")
parser.add_argument("--overwrite", action="store_true", help="replace them if there (always, in out/)")
args = parser.parse_args()
names = [f"neuron_{view}_by_hand.svg" for view in ("forward", "backward")]
if refused := viz.files.refusal(args.out, names, args.overwrite):  # out/, the demos' own folder, is always replaced
    parser.error(refused)
os.makedirs(args.out, exist_ok=True)

x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
b = Value(6.8813735870195432, label="b")
n = x1 * w1 + x2 * w2 + b
n.label = "n"
o = n.tanh()
o.label = "o"

# By hand: the chain rule, one local derivative at a time.
do_dn = 1 - o.data ** 2
by_hand = {"x1": do_dn * w1.data, "w1": do_dn * x1.data, "x2": do_dn * w2.data, "w2": do_dn * x2.data, "b": do_dn}

o.backward()
print(f"o = {o.data:.4f}")
print(f"{'':4} {'by hand':>9} {'backward()':>11}")
for v in (x1, w1, x2, w2, b):
    print(f"{v.label:4} {by_hand[v.label]:9.4f} {v.grad:11.4f}")

for view, name in zip(("forward", "backward"), names):
    print("wrote", viz.save(viz.draw_graph(o, view=view), os.path.join(args.out, name), overwrite=True))
