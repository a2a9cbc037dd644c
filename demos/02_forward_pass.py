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
