"""The lesson's restaurant neuron: three judges' scores, weighted, summed, activated.

Run: python demos/01_restaurant_neuron.py
"""
from microgradnn import Neuron

inputs = [0.9, 0.6, 0.2]   # food quality, price, distance
weights = [0.6, 0.3, 0.1]  # how much each judge matters
bias = 0.1                 # the mood nudge

# The same weights and bias, three activations: none ("linear"), ReLU and sigmoid.
raw = Neuron.from_weights(weights, bias, activation="linear")(inputs)
relu = Neuron.from_weights(weights, bias, activation="relu")(inputs)
sigmoid = Neuron.from_weights(weights, bias, activation="sigmoid")(inputs)

print(f"Weighted sum + bias : {raw.data:.3f}")
print(f"After ReLU          : {relu.data:.3f}")
print(f"After Sigmoid       : {sigmoid.data:.3f}")

# The lesson's story scores each judge out of 10 (9, 6, 2): 0.6*9 + 0.3*6 + 0.1*2 = 7.4, plus the
# nudge 7.5, which sigmoid squashes to nearly 1, a strong "yes"; the 0-1 scores above give 0.698.
story = [9, 6, 2]
votes = Neuron.from_weights(weights, 0.0, activation="linear")(story)
sigmoid10 = Neuron.from_weights(weights, bias, activation="sigmoid")(story)
print(f"Scores out of 10    : {votes.data:.3f} + bias {bias} -> sigmoid {sigmoid10.data:.3f}")
