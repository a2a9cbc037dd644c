"""A first look at the engine: build an expression, backpropagate, read the gradients."""
from microgradnn import Value

# One neuron by hand: o = tanh(x1*w1 + x2*w2 + b). The bias is picked so that the sum is
# 0.8814 and o = tanh(0.8814) = 0.7071 (1/sqrt 2): then do/d(sum) = 1 - o**2 = 0.5, a round number.
x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
b = Value(6.8813735870195432, label="b")
o = (x1 * w1 + x2 * w2 + b).tanh()
o.label = "o"
o.backward()

print(o)  # grad=1: backward starts from do/do = 1
for v in (x1, w1, x2, w2, b):
    print(f"d o / d {v.label:2} = {v.grad:+.4f}")
