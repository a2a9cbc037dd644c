"""The whole idea in 50 lines: a Value that records how it was made, and backward.

Read it next to microgradnn/engine.py, which is the same idea with an op table (one row
per op: forward and derivative rules), input checks, no_grad and error messages around it.
Each op here computes its result and, at once, the local derivative d(out)/d(input) of
each input; backward visits the nodes outputs-first and adds local * grad into each input.
(benchmarks/run.py also times this engine, as a yardstick for the op table's cost.)
"""
import math


class Value:
    __slots__ = ("data", "grad", "inputs", "local", "depth")

    def __init__(self, data, inputs=(), local=(), depth=0):
        self.data, self.grad = data, 0.0
        self.inputs, self.local, self.depth = inputs, local, depth  # depth: longest path from a leaf

    def __add__(self, other):  # d(a+b)/da = 1, d(a+b)/db = 1
        other = other if type(other) is Value else Value(float(other))
        return Value(self.data + other.data, (self, other), (1.0, 1.0), 1 + max(self.depth, other.depth))

    def __mul__(self, other):  # d(ab)/da = b, d(ab)/db = a
        other = other if type(other) is Value else Value(float(other))
        return Value(self.data * other.data, (self, other), (other.data, self.data), 1 + max(self.depth, other.depth))

    __radd__, __rmul__ = __add__, __mul__

    def relu(self):  # d relu(a)/da = 1 where a > 0, else 0
        return Value(self.data if self.data > 0.0 else 0.0, (self,), (float(self.data > 0.0),), self.depth + 1)

    def tanh(self):  # d tanh(a)/da = 1 - tanh(a)^2
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,), self.depth + 1)

    def backward(self):
        nodes, seen, stack = [], {self}, [self]
        while stack:  # every node made by an op reachable from self, once
            v = stack.pop()
            if v.inputs:
                nodes.append(v)
            for x in v.inputs:
                if x not in seen:
                    seen.add(x)
                    stack.append(x)
        self.grad = 1.0
        for v in sorted(nodes, key=lambda v: v.depth, reverse=True):  # a node's users come before it
            for x, d in zip(v.inputs, v.local):
                x.grad += d * v.grad  # the chain rule


if __name__ == "__main__":
    x, w, b = Value(2.0), Value(-3.0), Value(6.8813735870195432)
    o = (x * w + b).tanh()
    o.backward()
    print(f"o = {o.data:.4f}; do/dx = {x.grad:.4f}, do/dw = {w.grad:.4f}, do/db = {b.grad:.4f}")
