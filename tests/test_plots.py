import pytest

import microgradnn as mg

plots = pytest.importorskip("microgradnn.plots", reason="matplotlib is not installed")


@pytest.mark.parametrize("nout, make", [(1, lambda: mg.data.make_moons(30, seed=0)),
                                        (3, lambda: mg.data.make_spiral(30, classes=3, seed=0))])
def test_decision_boundary_and_loss_curve_write_pngs(tmp_path, nout, make):
    X, y = make()
    model = mg.MLP(2, [4, nout], seed=0)
    history = mg.fit(model, X, y if nout == 3 else 2 * y - 1, "cross_entropy" if nout == 3 else "hinge",
                     "sgd", epochs=3, verbose=False)
    boundary = plots.decision_boundary(model, X, y, str(tmp_path / "b.png"), resolution=20)
    curve = plots.loss_curve(history, str(tmp_path / "c.png"))
    for path in (boundary, curve):
        data = open(path, "rb").read()
        assert data[:4] == b"\x89PNG" and len(data) > 5000


def test_loss_curve_of_a_regression_fit_without_accuracy(tmp_path):
    history = mg.train.History(loss=[3.0, 2.0, 1.5], accuracy=[])  # fit gives no accuracy for regression
    data = open(plots.loss_curve(history, str(tmp_path / "c.png")), "rb").read()
    assert data[:4] == b"\x89PNG"
