"""The playground's "Python script": a setup rebuilt with the library, trained as the page trains it."""
from __future__ import annotations

import numpy as np

from microgradnn.viz.live.config import dataset_call


def script(c: dict, epochs: int, upload: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """The library calls that rebuild configuration `c` and train it for `epochs` epochs
    (an uploaded CSV's rows are written into the script, so it runs on its own)."""
    name = c["dataset"]
    if name == "csv":
        if upload is None:
            raise ValueError("script: the dataset is an uploaded CSV, but no upload was given")
        X, y = upload
        load = (f"X = np.array({X.tolist()!r})  # your uploaded x1,x2,label rows\n"
                f"y = np.array({y.tolist()!r})")
    else:
        function, args, kwargs = dataset_call(c)
        call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        load = f"X, y = mg.data.{function}({call})"
    hinge = c["loss"] == "hinge"
    nout = "int(y.max()) + 1" if c["loss"] == "cross_entropy" else "1"
    out_act = "sigmoid" if c["loss"] == "binary_cross_entropy" else "linear"
    optimizer = {"sgd": "SGD", "adam": "Adam"}[c["optimizer"]]
    sizes = ", ".join(map(str, [*c["hidden"], nout]))
    return f'''"""The microgradnn playground's setup, rebuilt and trained with the library."""
import numpy as np

import microgradnn as mg

{load}
t = {"y * 2.0 - 1.0  # hinge reads labels as -1/+1" if hinge else "y.astype(float)"}
order = np.random.default_rng({c['seed']}).permutation(len(X))  # the playground's train/test split
k = min(max(1, round(len(X) * {c['test']!r})), len(X) - 1)
train, test = np.sort(order[k:]), np.sort(order[:k])

model = mg.MLP(2, [{sizes}], "{c['activation']}", "{out_act}", seed={c['seed']})
optimizer = mg.optim.{optimizer}(model.parameters(), lr={c['lr']!r}, weight_decay={c['l2']!r})
history = mg.fit(model, X[train], t[train], "{c['loss']}", optimizer, epochs={epochs},
                 batch_size={c['batch']}, seed={c['seed']}, compiled=True)
print(model)
print(f"train accuracy {{mg.accuracy(model, X[train], t[train]):.1%}}, "
      f"test accuracy {{mg.accuracy(model, X[test], t[test]):.1%}}")
model.save("playground_model.json", overwrite=True)
'''
