import numpy as np
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


def test_loss_curve_of_one_epoch_shows_its_point_on_whole_epoch_ticks(tmp_path):
    # a line through one point draws nothing: fit(epochs=1) gave an empty plot, with ticks at 0.96, 0.98, ...
    import re
    svg = open(plots.loss_curve(mg.train.History(loss=[1.16], accuracy=[0.3]), tmp_path / "c.svg")).read()
    assert len(re.findall(r"<use[^>]*#2e86c1", svg)) == 1 and len(re.findall(r"<use[^>]*#e67e22", svg)) == 1
    assert re.findall(r'<g id="xtick_\d+">.*?<!-- (.*?) -->', svg, re.S) == ["1"]


def test_plots_refuse_wrong_input_naming_the_problem(tmp_path):
    X, y = mg.data.make_moons(30, seed=0)
    model = mg.MLP(2, [4, 1], seed=0)
    out = str(tmp_path / "b.png")
    cases = [((model, X, y), {"resolution": 1}, ValueError, r"^decision_boundary: resolution must be an int >= 2, got 1"),
             ((model, X, y), {"resolution": 2.5}, TypeError, r"^decision_boundary: resolution must be an int >= 2"),
             ((model, X, y), {"resolution": 10**5}, ValueError, r"^decision_boundary: resolution must be at most 1000"),
             ((model, X[:, :1], y), {}, ValueError, r"^decision_boundary: expected an array of shape \(n, 2\)"),
             ((model, X, y[:10]), {}, ValueError, r"^decision_boundary: X has 30 rows but y has 10 labels"),
             ((model, X[:0], y[:0]), {}, ValueError, r"^decision_boundary: X has no rows"),
             ((model, [[-1e308, 0], [1e308, 1]], [0, 1]), {}, ValueError,  # was: "decision_function: X contains NaN"
              r"^decision_boundary: X spans more than a float holds \(from -1e\+308 to 1e\+308\); scale it down"),
             ((model, [[0, -8.5e307], [1, 8.5e307]], [0, 1]), {}, ValueError,  # finite, but not with its margins
              r"^decision_boundary: X spans more than a float holds \(from -8.5e\+307 to 8.5e\+307\); scale it"),
             ((model, X, [0, 1, 2] * 10), {}, ValueError, r"^decision_boundary: a model with one output tells two"),
             (("model", X, y), {}, TypeError, r"^decision_boundary: model must be a Module, got str"),
             ((mg.MLP(3, [2, 1]), X, y), {}, ValueError, r"^decision_boundary: .* 2 inputs, but the model takes 3")]
    for args, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            plots.decision_boundary(*args, out, **kwargs)
    with pytest.raises(TypeError, match=r"^loss_curve: history must be the History fit returns, got list"):
        plots.loss_curve([1.0, 0.5], tmp_path / "c.png")
    with pytest.raises(ValueError, match=r"^loss_curve: history has no epochs to draw"):
        plots.loss_curve(mg.train.History(loss=[], accuracy=[]), tmp_path / "c.png")
    assert list(tmp_path.iterdir()) == []
    # a list is data too, and -1/+1 labels (hinge's) are the two classes, as accuracy reads them
    assert plots.decision_boundary(model, X.tolist(), (2 * y - 1).tolist(), out, resolution=10) == out


# ---- what the pictures show, read back from the figure --------------------------------------

@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots save, drawn (so that colours are resolved), in order."""
    import matplotlib.figure
    figures, save = [], matplotlib.figure.Figure.savefig

    def savefig(fig, *args, **kwargs):
        fig.canvas.draw()
        figures.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return figures


def _points(ax):
    """The scatter's points and their colours (RGBA rows)."""
    from matplotlib.collections import PathCollection
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    return points.get_offsets(), points.get_facecolors()


def _shaded_classes(ax, k):
    """The classes whose colour the background shows somewhere, for a model of k > 1 outputs (each grid
    cell's class is drawn below the smooth contours, which cover it but near points where three meet)."""
    from matplotlib.collections import QuadMesh
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return {int(v) for v in np.unique(mesh.get_array())}


def _linear(nout, rows):
    model = mg.nn.Linear(2, nout, seed=0)
    for p, v in zip(model.parameters(), [w for row in rows for w in row[:2]] + [row[2] for row in rows]):
        p.data = float(v)
    return model


@pytest.mark.parametrize("k", [6, 8, 25])
def test_decision_boundary_gives_each_class_its_own_colour(tmp_path, drawn, k):
    # with 6 classes or more, the 5-colour palette made classes share a colour (2 and 3 for 6)
    X, y = mg.data.make_spiral(3 * k, classes=k, seed=0)
    plots.decision_boundary(mg.MLP(2, [4, k], seed=0), X, y, tmp_path / "b.png", resolution=10)
    _, colours = _points(drawn[0].axes[0])
    by_class = {c: {tuple(col) for col in colours[y == c]} for c in range(k)}
    assert all(len(v) == 1 for v in by_class.values())
    assert len(set().union(*by_class.values())) == k


def test_decision_boundary_shades_only_the_classes_the_model_predicts(tmp_path, drawn):
    # scores -x0, -10, x0: class 0 left of x0 = 0, class 2 right, class 1 nowhere; the labels were
    # contoured as numbers, so between 0 and 2 a strip of class 1's colour ran along the boundary
    model = _linear(3, [[-1, 0, 0], [0, 0, -10], [1, 0, 0]])
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.5]])
    plots.decision_boundary(model, X, [0, 2, 1], tmp_path / "b.png", resolution=15)
    assert set(model.predict(np.c_[np.linspace(-2, 2, 50), np.zeros(50)])) == {0, 2}
    assert _shaded_classes(drawn[0].axes[0], 3) == {0, 2}
    from matplotlib.collections import QuadMesh  # each cell in its class's colour, the model's class there
    ax = drawn[0].axes[0]
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    corners = mesh.get_coordinates()
    centres = ((corners[:-1, :-1] + corners[1:, 1:]) / 2).reshape(-1, 2)
    labels, fills = np.asarray(mesh.get_array()).ravel(), mesh.get_facecolors()
    assert (labels == model.predict(centres)).all()
    offsets, colours = _points(ax)
    for c, colour in zip([0, 2, 1], colours):  # the points' labels; the plane a quarter of their colour over white
        assert {tuple(f[:3]) for f in fills[labels == c]} <= {tuple(0.75 + 0.25 * colour[:3])}


def test_decision_boundary_of_several_classes_shows_the_plane_in_the_predicted_classes_colours(tmp_path, drawn):
    # each class where its score beats the others' (its margin's 0 contour): smooth edges, read back
    # as a person sees them, pixel by pixel, away from the edges and the points
    from matplotlib.colors import to_rgb
    from matplotlib.contour import ContourSet
    model = _linear(3, [[-1, 0.3, 0.05], [0.2, 1, -0.1], [1, -0.4, 0.02]])
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.5], [1.0, -1.0]])
    plots.decision_boundary(model, X, [0, 1, 0, 2], tmp_path / "b.png", resolution=40)
    fig, ax = drawn[0], drawn[0].axes[0]
    assert any(isinstance(c, ContourSet) for c in ax.collections)  # smooth edges: no scores tie on this grid
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3] / 255
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    rng = np.random.default_rng(0)  # (inside the frame, whose lines are black)
    probes = np.c_[rng.uniform(x0, x1, 600), rng.uniform(y0, y1, 600)] * 0.96
    top = np.sort(model.decision_function(probes), axis=1)
    far = (top[:, -1] - top[:, -2] > 0.15) & (np.abs(probes[:, None] - X[None]).max(-1).min(1) > 0.15)
    probes = probes[far]
    shades = np.array([0.75 + 0.25 * np.array(to_rgb(c)) for c in plots._colours(3)])  # alpha 0.25 over white
    px = ax.transData.transform(probes)
    seen = image[image.shape[0] - 1 - px[:, 1].astype(int), px[:, 0].astype(int)]
    shown = np.abs(seen[:, None] - shades[None]).max(-1).argmin(1)
    assert len(probes) > 200 and set(shown) == {0, 1, 2}
    assert (shown == model.predict(probes)).all()
    assert (np.abs(seen - shades[shown]).max(-1) < 0.02).all()


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e8])
def test_decision_boundary_frames_the_data_at_any_scale(tmp_path, drawn, scale):
    # a margin of 0.3 in data units: data a millionth wide was a dot in the middle of a plane 0.6 wide
    # (the boundary near it unresolved), and data 1e8 wide had its outer points cut in half by the frame
    X, y = mg.data.make_moons(30, seed=0)
    X = X * [scale, 10 * scale]
    plots.decision_boundary(mg.MLP(2, [4, 1], seed=0), X, y, tmp_path / "b.png", resolution=10)
    ax = drawn[0].axes[0]
    for lim, column in ((ax.get_xlim(), X[:, 0]), (ax.get_ylim(), X[:, 1])):
        width, span = lim[1] - lim[0], column.max() - column.min()
        assert span / width > 0.75
        assert lim[0] + 0.02 * width < column.min() and column.max() < lim[1] - 0.02 * width


def test_decision_boundary_frames_data_on_one_line_with_a_margin(tmp_path, drawn):
    # every point at x = 0: the plane is 0.3 either side of it (not 0 wide), and 8 % of y's span either side of y's
    X = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])
    plots.decision_boundary(mg.MLP(2, [4, 1], seed=0), X, [0, 1, 0], tmp_path / "b.png", resolution=10)
    ax = drawn[0].axes[0]
    assert np.allclose(ax.get_xlim(), (-0.3, 0.3)) and np.allclose(ax.get_ylim(), (1 - 0.16, 3 + 0.16))


def test_loss_curve_refuses_a_history_it_cannot_draw_truly(tmp_path):
    # each was drawn without a word: a gap for NaN or infinity (all NaN: an empty picture), strings on a
    # categorical axis, accuracy in percent above the 0..1 axis; or failed inside matplotlib ("x and y
    # must have same first dimension") for an accuracy list shorter than the loss list
    H, nan, inf = mg.train.History, float("nan"), float("inf")
    cases = [(H([1.0, nan, 0.5], []), r"history.loss\[1\] \(epoch 2\) must be a finite number, got nan"),
             (H([nan] * 3, []), r"history.loss\[0\] \(epoch 1\) must be a finite number, got nan"),
             (H([1.0, inf], []), r"history.loss\[1\] \(epoch 2\) must be a finite number, got inf"),
             (H(["a", "b"], []), r"history.loss\[0\] \(epoch 1\) must be a finite number, got str 'a'"),
             (H([1.0, 0.5], [0.5, nan]), r"history.accuracy\[1\] \(epoch 2\) must be a finite number, got nan"),
             (H([1.0, 0.5], [50.0, 60.0]), r"history.accuracy\[0\] \(epoch 1\) must be a fraction in \[0, 1\], got 50"),
             (H([1.0], [1.5]), r"history.accuracy\[0\] \(epoch 1\) must be a fraction in \[0, 1\], got 1.5"),
             (H([1.0, 0.5, 0.3], [0.5, 0.6]), r"history has 3 losses but 2 accuracies; one of each per epoch"),
             (H(1.5, []), r"history.loss must be a list of numbers, one per epoch, got float")]
    for history, message in cases:
        with pytest.raises((ValueError, TypeError), match="^loss_curve: " + message):
            plots.loss_curve(history, tmp_path / "c.png")
    assert list(tmp_path.iterdir()) == []


def test_loss_curve_draws_each_epoch_at_its_number(tmp_path, drawn):
    X, y = mg.data.make_moons(20, seed=0)
    history = mg.fit(mg.MLP(2, [4, 1], seed=0), X, 2 * y - 1, "hinge", "sgd", epochs=4, verbose=False)
    plots.loss_curve(history, tmp_path / "c.png")
    (loss,), (acc,) = (a.get_lines() for a in drawn[0].axes)
    assert list(loss.get_xdata()) == list(acc.get_xdata()) == [1, 2, 3, 4]
    assert list(loss.get_ydata()) == history.loss and list(acc.get_ydata()) == history.accuracy
    low, high = drawn[0].axes[0].get_ylim()
    assert low < min(history.loss) and max(history.loss) < high


def test_decision_boundary_of_a_model_overflowing_on_the_plane_says_so_and_leaves_no_figure(tmp_path):
    # the engine's OverflowError came out naming a dot node only, and each failed call left a pyplot
    # figure open (Jupyter shows it, empty, at the cell's end)
    import matplotlib.pyplot as plt
    X, y = mg.data.make_moons(20, seed=0)
    model = mg.MLP(2, [4, 1], seed=0)
    for p in model.parameters():
        p.data = 1e300
    before = plt.get_fignums()
    with pytest.raises(OverflowError, match=r"^decision_boundary: the model fails somewhere on "
                                            r"the plane drawn \(x from -1\.24 to 2\.24, y from .*\): dot\("):
        plots.decision_boundary(model, X, y, tmp_path / "b.png", resolution=5)
    assert plt.get_fignums() == before and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threshold", [1e17, -1e17, 0.0])
def test_decision_boundary_of_one_output_at_a_far_threshold(tmp_path, drawn, threshold):
    # a threshold of 1e17 (mse on labels 0 and 2e17 sets one): the bands' edges, threshold -1 and +1,
    # were the threshold itself, and matplotlib failed with "Contour levels must be increasing"
    from matplotlib.contour import ContourSet
    X, y = mg.data.make_moons(20, seed=0)
    model = mg.MLP(2, [4, 1], seed=0)
    model.threshold = threshold
    plots.decision_boundary(model, X, y, tmp_path / "b.png", resolution=10)
    ax = drawn[0].axes[0]
    (bands,) = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
    assert bands.levels[1] == threshold and bands.levels[0] < bands.levels[1] < bands.levels[2]
    inside = [[i for i, p in enumerate(bands.get_paths()) if len(p.vertices) and p.contains_point(x)] for x in X]
    assert [band for (band,) in inside] == list(model.predict(X))  # each point in its predicted class's band
    _, colours = _points(ax)
    for c in (0, 1):  # in the colour of the points labelled that class
        assert tuple(bands.get_facecolors()[c][:3]) == tuple(colours[list(y).index(c)][:3])


def test_plots_need_no_backend_and_leave_pyplot_alone(tmp_path):
    # they drew with pyplot: importing the module loaded the user's backend, and an interactive one on a
    # machine with no display failed the import ("Cannot load backend 'TkAgg' ... 'headless' is running")
    import os
    import subprocess
    import sys
    script = ("import sys, matplotlib; matplotlib.use('TkAgg')\n"
              "import microgradnn as mg; from microgradnn import plots\n"
              "X, y = mg.data.make_moons(10, seed=0)\n"
              f"plots.decision_boundary(mg.MLP(2, [2, 1], seed=0), X, y, {str(tmp_path / 'b.png')!r}, resolution=5)\n"
              f"plots.loss_curve(mg.train.History([1.0, 0.5], [0.5, 0.7]), {str(tmp_path / 'c.png')!r})\n"
              "assert 'matplotlib.pyplot' not in sys.modules\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "c.png"]


def test_loss_curve_shows_accuracy_0_and_1_whole(tmp_path, drawn):
    # the accuracy axis ran from exactly 0: an epoch of accuracy 0 sat on the frame, its marker cut in half
    plots.loss_curve(mg.train.History([2.0, 1.0, 0.5], [0.0, 0.5, 1.0]), tmp_path / "c.png")
    low, high = drawn[0].axes[1].get_ylim()
    assert low < -0.02 and high > 1.02
