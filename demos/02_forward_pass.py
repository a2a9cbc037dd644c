"""The lesson's forward pass: 2 inputs -> 3 hidden ReLU neurons -> 1 sigmoid output.

Run: python demos/02_forward_pass.py
"""
from microgradnn import MLP, Layer

# Each neuron written as (weights, bias), exactly as in the lesson.
hidden = Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)], activation="relu")
output = Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], activation="sigmoid")
net = MLP.from_layers([hidden, output])
print(net)

# Activations ripple forward layer by layer.
x = [1.0, 0.5]
print("hidden activations:", [round(h.data, 4) for h in hidden(x)])
pred = net(x).data
print(f"Prediction: {pred:.4f}  ->  {'Yes' if pred >= 0.5 else 'No'} ({pred:.1%} confidence)")

# With --out DIR: the same pass as a page that steps neuron by neuron (then backward against the
# label 1, one gradient-descent step and the new prediction); open it in a browser.
if __name__ == "__main__":
    import argparse
    import os

    from microgradnn import viz

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", help="folder for forward_pass.html (the animation)")
    parser.add_argument("--overwrite", action="store_true", help="replace it if there (always, in out/)")
    args = parser.parse_args()
    if args.out is not None:
        target = os.path.join(args.out, "forward_pass.html")
        if refused := viz.files.refusal(args.out, ["forward_pass.html"], args.overwrite):  # out/ is always replaced
            parser.error(refused)
        os.makedirs(args.out, exist_ok=True)
        print("wrote", viz.animate_network(net, x, target, target=1.0, overwrite=True))
