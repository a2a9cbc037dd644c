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


def test_plots_never_replace_a_file_unless_asked(tmp_path):
    X, y = mg.data.make_moons(30, seed=0)
    model = mg.MLP(2, [4, 1], seed=0)
    history = mg.train.History(loss=[3.0, 2.0], accuracy=[0.5, 0.6])
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's own picture")
    with pytest.raises(FileExistsError, match="decision_boundary: .*mine.png already exists; pass overwrite=True"):
        plots.decision_boundary(model, X, y, mine, resolution=20)
    with pytest.raises(FileExistsError, match="loss_curve: .*mine.png already exists; pass overwrite=True"):
        plots.loss_curve(history, str(mine))
    assert mine.read_bytes() == b"the user's own picture"
    assert plots.loss_curve(history, mine, overwrite=True) == str(mine) and mine.read_bytes()[:4] == b"\x89PNG"
    assert plots.loss_curve(history, tmp_path / "c.svg").endswith("c.svg")
    with pytest.raises(ValueError, match=r"loss_curve: unknown extension '.json' in .*m.json; use one of .*\.png"):
        plots.loss_curve(history, tmp_path / "m.json")
    with pytest.raises(ValueError, match=r"^loss_curve: unknown extension '\(none\)' in .*m; use one of"):
        plots.loss_curve(history, tmp_path / "m")
    with pytest.raises(IsADirectoryError, match=r"^loss_curve: .* is a folder; give a file name"):
        plots.loss_curve(history, tmp_path)  # was: "unknown extension (none)", as the other writers once said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.svg", "mine.png"]  # no temporary file left
