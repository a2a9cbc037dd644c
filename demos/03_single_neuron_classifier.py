"""The lesson's practice exercise: a single sigmoid neuron classifying three examples,
plus its "predict the output" challenge.

The lesson fixes weights [0.8, -0.5] and bias 0.1 but does not list its three training
examples, so the three below are our own choice.

Run: python demos/03_single_neuron_classifier.py
"""
from microgradnn import Neuron

examples = [([1.0, 0.5], 1), ([0.2, 0.9], 0), ([0.6, 0.1], 1)]
neuron = Neuron.from_weights([0.8, -0.5], 0.1, activation="sigmoid")

for inputs, label in examples:
    pred = neuron(inputs).data
    print(f"inputs={inputs}  prediction={pred:.4f}  label={label}  correct={round(pred) == label}")

# Challenge #1: relu(sum(x * w) + b) for inputs [2, 3], weights [0.5, -1], bias 1; the lesson's code prints 0.0.
out = Neuron.from_weights([0.5, -1.0], 1.0, activation="relu")([2.0, 3.0]).data
print(f"challenge #1: relu(2*0.5 + 3*(-1.0) + 1.0) = relu(-1.0) = {out}")
