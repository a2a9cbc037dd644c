"""A 3-class spiral with cross-entropy and Adam, trained with microgradnn.fit.

Run: python demos/06_spiral_adam.py [--epochs N]
"""
import argparse

import microgradnn as mg
from microgradnn.cli import positive

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=positive, default=200, help="training epochs (default 200)")
epochs = parser.parse_args().epochs

X, y = mg.data.make_spiral(150, classes=3, seed=0)
model = mg.MLP(2, [16, 16, 3], seed=1)  # three outputs: one logit per class
optimizer = mg.optim.Adam(model.parameters(), lr=0.05)
history = mg.fit(model, X, y, mg.losses.cross_entropy, optimizer, epochs=epochs)

# history.loss[-1] is the last epoch's mean, taken before that epoch's updates: the trained model's own loss
print(f"final loss {mg.losses.cross_entropy(model.decision_function(X).tolist(), y.tolist()).data:.4f}")
print(f"final training accuracy: {mg.accuracy(model, X, y):.1%}")
