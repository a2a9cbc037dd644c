"""Moons with the SVM max-margin (hinge) loss: a 2-16-16-1 MLP to 100% training accuracy.

Run: python demos/05_moons_svm.py [--epochs N]
"""
import argparse

import microgradnn as mg
from microgradnn.cli import positive

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=positive, default=100, help="training epochs (default 100)")
epochs = parser.parse_args().epochs

X, y = mg.data.make_moons(100, noise=0.1, seed=0)
targets = y * 2 - 1  # the hinge loss wants labels -1 / +1

model = mg.MLP(2, [16, 16, 1], seed=1)
print(model)
optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

# The plain loop, written out: forward, loss, zero_grad, backward, step.
for epoch in range(1, epochs + 1):
    scores = [model(x) for x in X]
    loss = mg.losses.hinge(scores, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if epoch % 10 == 0 or epoch == epochs:
        acc = sum((s.data > 0) == (t > 0) for s, t in zip(scores, targets)) / len(X)
        print(f"epoch {epoch:3d}  loss {loss.data:.4f}  accuracy {acc:.0%}")

print(f"final training accuracy: {mg.accuracy(model, X, targets):.1%}")
