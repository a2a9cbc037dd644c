"""The playground as a learner uses it: headless Chromium (conftest's `browser`) on a live server.
Screenshots go to $MICROGRADNN_SCREENSHOTS when set, else tmp_path. Every wait is bounded."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import microgradnn as mg
from microgradnn.viz.live.config import split
from conftest import new_page

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")]

CONTROLS = ["dataset", "samples", "noise", "classes", "test", "seed", "activation", "loss", "optimizer", "lr",
            "batch", "l2"]


def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MICROGRADNN_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def server():
    pg = mg.viz.playground(open_browser=False)
    yield pg
    pg.stop()


@pytest.fixture
def tab(browser):
    pg = new_page(browser, 1400, 1000, accept_downloads=True)
    yield pg
    pg.context.close()


@pytest.fixture
def other(browser):
    """A second tab, as a learner opens the same playground twice."""
    pg = new_page(browser, 1400, 1000)
    yield pg
    pg.context.close()


def until(predicate, seconds: float = 30, step: float = 0.1):
    for _ in range(int(seconds / step)):
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not reached within {seconds} s")


def href(tab) -> str:
    """The page's address now (Playwright's `page.url` lags behind history.replaceState while we sleep)."""
    return tab.evaluate("location.href")


def open_page(tab, url: str) -> None:
    tab.goto(url)
    tab.wait_for_selector("body[data-ready='1']", timeout=20_000)


def controls(tab) -> dict:
    return {k: tab.input_value(f"#{k}") for k in CONTROLS}


def downloaded_model(tab, server, tmp_path, name: str):
    with tab.expect_download(timeout=10_000) as info:
        tab.click("#download-model")
    path = tmp_path / name
    info.value.save_as(path)
    return mg.Module.from_file(path)


def test_train_moons_click_a_point_edit_a_weight_and_reload(server, tab, browser, tmp_path):
    open_page(tab, server.url)
    assert tab.input_value("#dataset") == "moons" and tab.inner_text("#epoch") == "0"
    tab.click("#play")
    until(lambda: float(tab.get_attribute("#test-acc", "data-value") or 0) > 0.95, seconds=60)
    tab.click("#play")  # pause
    until(lambda: tab.inner_text("#play").endswith("play") and not server.session.running)
    until(lambda: tab.inner_text("#epoch") == str(server.session.epoch))  # the page caught up
    assert float(tab.get_attribute("#test-acc", "data-value")) > 0.95
    assert tab.inner_text("#test-acc").endswith("%")
    tab.screenshot(path=str(shots(tmp_path) / "playground-trained.png"), full_page=True)

    # the numbers on the page are the engine's, for the model the page offers for download
    model = downloaded_model(tab, server, tmp_path, "trained.json")
    X, y = mg.data.make_moons(200, noise=0.1, seed=0)
    train, test = split(200, 0.3, 0)
    assert float(tab.get_attribute("#test-acc", "data-value")) == mg.accuracy(model, X[test], y[test], threshold=0.0)
    assert float(tab.get_attribute("#train-acc", "data-value")) == mg.accuracy(model, X[train], y[train], threshold=0.0)
    engine_loss = mg.losses.binary_cross_entropy_with_logits([model(x) for x in X[test]], y[test].astype(float))
    assert float(tab.get_attribute("#test-loss", "data-value")) == pytest.approx(engine_loss.data, rel=1e-12)

    # click a point: its network lights up and its forward and backward graph appears
    i = int(train[0])
    tab.mouse.click(*tab.evaluate(f"playground.pointPixel({i})"))
    tab.wait_for_selector("#point-graph svg", timeout=20_000)
    assert tab.inner_text("#point-title") == f"#{i} (train)"
    graph_text = tab.inner_text("#point-graph")
    assert "forward and backward" in graph_text and "grad" in graph_text
    assert tab.locator("#point-graph g.node").count() >= 10 and tab.locator("#point-graph g.cluster").count() == 0
    assert tab.locator("#network g.node").count() >= 2 + 8 + 8 + 1 and "prediction" in tab.inner_text("#network")
    page_x = json.loads(tab.inner_text("#point-x"))
    assert page_x == X[i].tolist()
    out = model(X[i])
    loss = mg.losses.binary_cross_entropy_with_logits([out], [float(y[i])])
    assert float(tab.inner_text("#point-output")) == out.data  # exactly: the same engine, the same weights
    assert float(tab.inner_text("#point-loss")) == loss.data
    assert tab.inner_text("#point-prediction") == f"class {int(out.data > 0)}" == f"class {y[i]}"
    tab.screenshot(path=str(shots(tmp_path) / "playground-point.png"), full_page=True)
    tab.check("#expand")  # expanded: the neurons' own nodes
    until(lambda: tab.locator("#point-graph g.cluster").count() > 0, seconds=30)
    tab.uncheck("#expand")
    until(lambda: tab.locator("#point-graph g.cluster").count() == 0, seconds=30)

    # click the output neuron: its bias, value and gradient; edit it and the prediction flips at once
    tab.click("#network g#L3N0")
    until(lambda: tab.input_value("#param-name") == "layers.2.neurons.0.b" and tab.inner_text("#param-grad") != "–")
    bias = dict(model.named_parameters())["layers.2.neurons.0.b"]
    assert float(tab.input_value("#param-value")) == bias.data
    model.zero_grad()
    mg.losses.binary_cross_entropy_with_logits([model(x) for x in X[train]], y[train].astype(float)).backward()
    assert float(tab.inner_text("#param-grad")) == pytest.approx(bias.grad, rel=1e-9, abs=1e-15)
    model.zero_grad()
    mg.losses.binary_cross_entropy_with_logits([model(X[i])], [float(y[i])]).backward()
    assert tab.inner_text("#param-point") == f"#{i}"
    assert float(tab.inner_text("#param-point-grad")) == bias.grad  # this point's own gradient, exactly
    boundary_before = tab.evaluate("document.getElementById('boundary').toDataURL()")
    new_bias = bias.data - out.data + (3.0 if out.data < 0 else -3.0)  # the output moves to +-3
    tab.fill("#param-value", repr(new_bias))
    tab.click("#param-set")
    until(lambda: float(tab.inner_text("#point-output")) != out.data)
    edited = downloaded_model(tab, server, tmp_path, "edited.json")
    assert dict(edited.named_parameters())["layers.2.neurons.0.b"].data == new_bias
    assert float(tab.inner_text("#point-output")) == edited(X[i]).data == pytest.approx(out.data + new_bias - bias.data)
    assert tab.inner_text("#point-prediction") == f"class {1 - y[i]}"
    until(lambda: tab.evaluate("document.getElementById('boundary').toDataURL()") != boundary_before)
    tab.screenshot(path=str(shots(tmp_path) / "playground-edited.png"), full_page=True)

    # change the setup on the page; the URL keeps it; a reload, and a fresh server, rebuild it
    tab.click("#add-layer")
    until(lambda: "hidden=8%2C8%2C4" in href(tab))
    tab.fill("#lr", "0.05")
    tab.dispatch_event("#lr", "change")
    until(lambda: "lr=0.05" in href(tab))
    tab.select_option("#activation", "relu")
    until(lambda: "activation=relu" in href(tab))
    shown, url = controls(tab), href(tab)
    assert parse_qs(urlsplit(url).query)["hidden"] == ["8,8,4"]
    tab.reload()
    tab.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert controls(tab) == shown and href(tab) == url
    assert tab.locator("#neurons canvas").count() == 8 + 8 + 4
    other = mg.viz.playground(open_browser=False)
    try:
        second = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        second.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        open_page(second, other.url + "?" + urlsplit(url).query)
        assert controls(second) == shown and other.session.config == server.session.config
        assert other.session.model.state_dict() == mg.viz.live.Session(server.session.config).model.state_dict()
        second.screenshot(path=str(shots(tmp_path) / "playground-from-url.png"), full_page=True)
        second.context.close()
    finally:
        other.stop()
    tab.hover("#neuron-1-2")
    tab.wait_for_timeout(400)  # the enlargement is animated
    tab.screenshot(path=str(shots(tmp_path) / "playground-hover.png"))
    assert tab.errors == []


def test_a_refused_setting_is_explained_on_the_page(server, tab, tmp_path):
    open_page(tab, server.url)
    tab.fill("#samples", "5000")
    tab.dispatch_event("#samples", "change")
    until(lambda: tab.is_visible("#message"))
    assert "samples must lie in [4, 2000]" in tab.inner_text("#message")
    assert server.session.config["samples"] == 200
    until(lambda: tab.input_value("#samples") == "200")  # the control shows the setting in force
    tab.screenshot(path=str(shots(tmp_path) / "playground-refused.png"))
    # the browser logs the 400 itself; nothing else went wrong
    assert all("400" in e for e in tab.errors), tab.errors


def test_a_link_with_a_refused_setting_opens_the_setup_in_force(server, tab, tmp_path):
    # a shared link this server refuses (a CSV it never got, a value out of range) once left the
    # page with empty controls, no network and "no answer from the playground server"
    for query in ("?dataset=csv&hidden=4", "?lr=100"):
        open_page(tab, server.url + query)
        message = tab.inner_text("#message")
        assert ("no CSV uploaded" if "csv" in query else "lr must lie in") in message, message
        assert "no answer" not in message, message
        assert controls(tab)["dataset"] == "moons" and tab.input_value("#lr") == "0.03"
        assert "dataset=moons" in href(tab)  # the address is the setup in force
        until(lambda: "8 tanh" in tab.inner_text("#network"))
        tab.click("#step")
        until(lambda: tab.inner_text("#epoch") != "0")
        tab.click("#reset")
        until(lambda: tab.inner_text("#epoch") == "0")
    tab.screenshot(path=str(shots(tmp_path) / "playground-refused-link.png"), full_page=True)
    assert all("400" in e for e in tab.errors), tab.errors


def test_a_csv_uploaded_from_the_page_becomes_the_data(server, tab, tmp_path):
    csv = tmp_path / "three.csv"
    csv.write_text("x1,x2,label\n" + "\n".join(f"{(i % 10) / 3},{(i * 7 % 11) / 4},{i % 3}" for i in range(60)))
    open_page(tab, server.url)
    tab.set_input_files("#upload", str(csv))
    until(lambda: tab.input_value("#dataset") == "csv" and "dataset=csv" in href(tab))
    assert tab.input_value("#loss") == "cross_entropy" and tab.input_value("#samples") == "60"
    until(lambda: "3 linear" in tab.inner_text("#network"))  # one output per class
    tab.click("#step")
    until(lambda: tab.inner_text("#epoch") == "1")
    tab.screenshot(path=str(shots(tmp_path) / "playground-csv.png"), full_page=True)
    assert tab.errors == []


def test_a_late_answer_to_an_earlier_change_does_not_undo_a_newer_one(server, tab):
    # two changes in quick succession: the first one's answer, arriving last, set the controls
    # (and the URL) back to a configuration no longer in force
    open_page(tab, server.url)
    held = []
    tab.route("**/api/config", lambda route: held.append(route) if not held else route.continue_())
    tab.select_option("#dataset", "spiral")
    for _ in range(100):  # (Playwright runs the route handler while it waits; 300 ms once, too few under load)
        tab.wait_for_timeout(100)
        if held:
            break
    assert len(held) == 1
    tab.select_option("#dataset", "xor")
    tab.wait_for_timeout(500)  # the second change, if sent at once, is answered now
    held[0].continue_()
    for _ in range(100):
        tab.wait_for_timeout(100)
        if server.session.config["dataset"] == "xor" and "dataset=" in href(tab):
            break
    tab.wait_for_timeout(500)
    assert server.session.config["dataset"] == "xor"
    assert "dataset=xor" in href(tab) and tab.input_value("#dataset") == "xor" and tab.errors == []


def test_a_second_tab_shows_the_first_tabs_changes_and_builds_on_them(server, tab, other, tmp_path):
    # tab B's controls, URL, neuron grid and parameter list stayed as B opened them after tab A changed the
    # setup, and B's + button sent a layer list built from its stale setup: it undid A's new layer
    open_page(tab, server.url)
    open_page(other, server.url)
    tab.click("#add-layer")
    until(lambda: server.session.config["hidden"] == [8, 8, 4])
    tab.fill("#lr", "0.01")
    tab.dispatch_event("#lr", "change")
    until(lambda: server.session.config["lr"] == 0.01)
    names = len(server.session.model.parameters())
    until(lambda: "hidden=8%2C8%2C4" in href(other) and other.input_value("#lr") == "0.01")
    until(lambda: other.locator("#neurons .layer").count() == 3)
    until(lambda: other.locator("#param-name option").count() == names)
    other.click("#neurons button[data-layer='0'][data-d='1']")
    until(lambda: server.session.config["hidden"] != [8, 8, 4])
    assert server.session.config["hidden"] == [9, 8, 4]
    until(lambda: "hidden=9%2C8%2C4" in href(tab))
    until(lambda: "2 -> 9 tanh -> 8 tanh -> 4 tanh" in other.text_content("#network"))
    other.screenshot(path=str(shots(tmp_path) / "playground-second-tab.png"))
    assert tab.errors == [] and other.errors == []


def test_the_classes_setting_is_live_only_for_data_that_takes_it(server, tab):
    open_page(tab, server.url)
    assert tab.input_value("#dataset") == "moons" and tab.is_disabled("#classes")  # moons has two
    tab.select_option("#dataset", "spiral")
    until(lambda: "dataset=spiral" in href(tab))
    assert tab.is_enabled("#classes")
    tab.fill("#classes", "4")
    tab.dispatch_event("#classes", "change")
    until(lambda: server.session.k == 4)
    tab.select_option("#dataset", "xor")
    until(lambda: "dataset=xor" in href(tab))
    assert tab.is_disabled("#classes") and tab.errors == []


def test_a_weight_typed_while_training_runs_is_not_overwritten_by_the_live_refresh(server, tab):
    open_page(tab, server.url)
    tab.click("#network g#L3N0")
    until(lambda: tab.input_value("#param-name") == "layers.2.neurons.0.b")
    tab.click("#play")
    until(lambda: server.session.epoch >= 2)
    tab.fill("#param-value", "2.5")  # the learner types a new value; the page refreshes the network every 2 s
    tab.wait_for_timeout(3000)
    assert server.session.running and tab.input_value("#param-value") == "2.5"
    tab.click("#param-set")
    until(lambda: any(kind == "set" for _, kind, _ in server.session.changes))
    assert [c for _, kind, c in server.session.changes if kind == "set"] == [("layers.2.neurons.0.b", 2.5)]
    until(lambda: tab.input_value("#param-value") != "2.5")  # after the set, the live value shows again
    assert tab.errors == []


def test_the_curves_get_each_epoch_once_in_order_while_actions_and_polls_overlap(server, tab):
    # an action's refresh and the poll's, both asking for the epochs after the same one, added
    # those epochs twice: the curves ran back, their scale read an older last epoch
    open_page(tab, server.url)
    for _ in range(20):
        tab.click("#step")
        tab.wait_for_timeout(60)
    tab.click("#play")
    tab.wait_for_timeout(1000)
    for _ in range(20):
        tab.click("#play")
        tab.wait_for_timeout(97)
    server.session.running = False  # paused, whatever the last click sent
    until(lambda: tab.inner_text("#epoch") == str(server.session.epoch))
    tab.wait_for_timeout(500)
    epochs = tab.evaluate("playground.state.history.map(r => r[0])")
    assert epochs == list(range(1, server.session.epoch + 1))
    assert tab.inner_text("#curves-scale").endswith(f"epochs 1–{server.session.epoch}") and tab.errors == []


def test_every_choice_of_every_list_shows_whole(server, tab, tmp_path):
    # the loss list was 110 px wide: binary_cross_entropy and binary_cross_entropy_with_logits both read
    # "binary_cross_e", so the page never said which loss it trains with
    open_page(tab, server.url)
    cut = tab.evaluate("""() => Array.from(document.querySelectorAll("select")).flatMap(s => {
      const ctx = document.createElement("canvas").getContext("2d"), style = getComputedStyle(s);
      ctx.font = style.fontSize + " " + style.fontFamily;
      const room = s.clientWidth - 20;  // the arrow's part
      return Array.from(s.options).filter(o => ctx.measureText(o.text).width > room).map(o => s.id + ": " + o.text);
    })""")
    assert cut == []
    tab.screenshot(path=str(shots(tmp_path) / "playground-lists.png"), full_page=True)


def test_the_curves_show_the_first_epoch(server, tab):
    # a line through one point draws nothing: after one epoch the curves were an empty box
    open_page(tab, server.url)
    tab.click("#step")
    until(lambda: "epochs 1–1" in tab.inner_text("#curves-scale"))
    colours = tab.evaluate("""() => {
      const c = document.getElementById("curves"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] === 255) seen.add([d[i], d[i + 1], d[i + 2]].join(","));
      return Array.from(seen);
    }""")
    assert "46,134,193" in colours and "230,126,34" in colours  # train's and test's colours
    assert tab.errors == []


def test_a_second_tab_shows_another_tabs_change_in_a_control_it_has_focused_but_not_edited(server, tab, other):
    # a control keeps the focus after it is used (a select after its choice): tab B left its focused control
    # as it was when tab A changed that setting, and it showed the old setting, not the one in force, for good
    open_page(tab, server.url)
    open_page(other, server.url)
    other.focus("#dataset")
    other.select_option("#dataset", "xor")
    until(lambda: server.session.config["dataset"] == "xor")
    until(lambda: tab.input_value("#dataset") == "xor")
    assert other.evaluate("document.activeElement.id") == "dataset"
    tab.select_option("#dataset", "circles")
    until(lambda: server.session.config["dataset"] == "circles")
    until(lambda: "dataset=circles" in href(other))
    until(lambda: other.input_value("#dataset") == "circles", seconds=5)
    # one being edited is left alone until it is committed, and then it is what is in force
    other.focus("#lr")
    other.fill("#lr", "0.5")
    tab.fill("#seed", "7")
    tab.dispatch_event("#seed", "change")
    until(lambda: "seed=7" in href(other))
    assert other.input_value("#lr") == "0.5" and other.input_value("#seed") == "7"
    other.press("#lr", "Tab")
    until(lambda: server.session.config["lr"] == 0.5)
    assert server.session.config["seed"] == 7 and other.errors == [] and tab.errors == []


def test_a_control_edited_back_to_its_value_shows_another_tabs_change_once_left(server, tab, other):
    # an edit undone before it was sent sends nothing: the control kept the old setting after the focus left it
    open_page(tab, server.url)
    open_page(other, server.url)
    other.focus("#lr")
    other.fill("#lr", "0.5")
    tab.fill("#lr", "0.01")
    tab.dispatch_event("#lr", "change")
    until(lambda: "lr=0.01" in href(other))
    assert other.input_value("#lr") == "0.5"  # being edited: left alone
    other.fill("#lr", "0.03")  # as it was shown
    other.press("#lr", "Tab")
    until(lambda: other.input_value("#lr") == "0.01", seconds=5)
    assert server.session.config["lr"] == 0.01 and other.errors == [] and tab.errors == []
