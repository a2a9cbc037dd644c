"""The lesson's practice exercise: a single sigmoid neuron classifying three examples,
plus its challenges with a number: predict the output (#1), fix the bug (#2), reorder the lines (#4).

The lesson fixes weights [0.8, -0.5] and bias 0.1 but does not list its three training
examples, so the three below are our own choice.

Run: python demos/03_single_neuron_classifier.py
"""
from microgradnn import MLP, Layer, Neuron

examples = [([1.0, 0.5], 1), ([0.2, 0.9], 0), ([0.6, 0.1], 1)]
neuron = Neuron.from_weights([0.8, -0.5], 0.1, activation="sigmoid")

for inputs, label in examples:
    pred = neuron(inputs).data
    print(f"inputs={inputs}  prediction={pred:.4f}  label={label}  correct={round(pred) == label}")

# Challenge #1: relu(sum(x * w) + b) for inputs [2, 3], weights [0.5, -1], bias 1; the lesson's code prints 0.0.
out = Neuron.from_weights([0.5, -1.0], 1.0, activation="relu")([2.0, 3.0]).data
print(f"challenge #1: relu(2*0.5 + 3*(-1.0) + 1.0) = relu(-1.0) = {out}")

# Challenge #2: the buggy code forgot the bias; with it, the first example's 0.6570 above.
buggy = Neuron.from_weights([0.8, -0.5], 0.0, activation="sigmoid")([1.0, 0.5]).data
fixed = neuron([1.0, 0.5]).data
print(f"challenge #2: without the bias sigmoid(0.55) = {buggy:.4f}, with it sigmoid(0.65) = {fixed:.4f}")

# Challenge #4: the lines in order (1, 5, 4, 2, 3) build 2 inputs -> 2 ReLU neurons -> 1 sigmoid output.
net = MLP.from_layers([Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3)], activation="relu"),
                       Layer.from_weights([([0.7, 0.4], 0.2)], activation="sigmoid")])
print(f"challenge #4: hidden [0.4, 0.3], sigmoid(0.7*0.4 + 0.4*0.3 + 0.2) = sigmoid(0.6) = {net([1.0, 0.5]).data:.4f}")
