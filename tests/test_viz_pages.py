"""The animation pages as a learner sees them: headless Chromium driven by Playwright (conftest's
`browser` and `page` fixtures). Screenshots go to $MICROGRADNN_SCREENSHOTS when set, else tmp_path."""
import copy
import os
import re
import shutil
from pathlib import Path

import pytest

import microgradnn as mg
from microgradnn import MLP, Value, viz
from conftest import neuron_graph

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")]

# Every text on the page, with its size in CSS pixels after all SVG scaling.
TEXT_SIZES = """() => Array.from(document.querySelectorAll("#graph svg text, #text, #controls span")).filter(
  t => t.textContent.trim() && t.getClientRects().length).map(t => {
    const size = parseFloat(getComputedStyle(t).fontSize);
    const m = t.getScreenCTM ? t.getScreenCTM() : null;
    return [t.textContent.trim(), size * (m ? Math.hypot(m.a, m.b) : 1)];
  })"""


def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MICROGRADNN_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lesson_network():
    return MLP.from_layers([mg.Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)]),
                            mg.Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])


def read(page) -> dict:
    """What the page shows now: step, texts, circle texts, gradient labels and boxes."""
    return page.evaluate("""() => {
      const texts = id => Array.from(document.querySelectorAll("#" + id + " text")).map(t => t.textContent);
      const circles = {};
      document.querySelectorAll("#graph g.node").forEach(g => { circles[g.id] = texts(g.id); });
      return {step: document.body.dataset.step, waiting: document.body.dataset.waiting,
              title: document.getElementById("title").textContent,
              equation: document.getElementById("equation").textContent, circles,
              sides: Array.from(document.querySelectorAll("text.side")).map(t => [t.dataset.node, t.textContent]),
              edges: Array.from(document.querySelectorAll("text.edgelabel")).map(t => [t.dataset.edge, t.textContent]),
              active: Array.from(document.querySelectorAll("#graph g.active")).map(g => g.id)};
    }""")


def engine_reference(target=1.0, lr=0.1):
    """The lesson network's numbers from the engine alone: forward, BCE loss, backward, one SGD step."""
    net = lesson_network()
    hidden = net.layers[0]([1.0, 0.5])
    out = net.layers[1](hidden)[0]
    loss = mg.losses.binary_cross_entropy([out], [target])
    loss.backward()
    ref = {"hidden": hidden, "out": out, "loss": loss, "net": net,
           "raw": [h.inputs[0] for h in hidden] + [out.inputs[0]]}
    stepped = copy.deepcopy(net)
    mg.optim.SGD(stepped.parameters(), lr=lr).step()
    ref["new"] = stepped([1.0, 0.5]).data
    return ref


def test_animate_network_steps_the_lesson_network_with_the_engines_numbers(page, tmp_path):
    net = lesson_network()
    before = net.state_dict()
    path = viz.animate_network(net, [1.0, 0.5], tmp_path / "net.html", target=1.0)
    html = Path(path).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) and "@import" not in html
    assert net.state_dict() == before and all(p.grad == 0 for p in net.parameters())  # the model is untouched
    ref = engine_reference()
    fmt = viz.fmt
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(Path(path).as_uri())
    assert read(page)["circles"]["L1N0"] == ["n0", "?"] and read(page)["circles"]["prediction"][1] == "?"
    n = int(page.get_attribute("#slider", "max"))
    seen = []
    for k in range(1, n + 1):
        page.keyboard.press("ArrowRight")
        now = read(page)
        assert now["step"] == str(k)
        seen.append(now)
        if k == 2:
            page.screenshot(path=str(shots(tmp_path) / "network-800-step2.png"), full_page=True)
    # forward: neuron by neuron, w·x + b then the activation; hidden activations as demo 02 prints them
    forward = [s for s in seen if s["title"].startswith("Forward")]
    assert [s["active"] for s in forward] == [[f"L{li}N{j}"] for li, j in ((1, 0), (1, 1), (1, 2), (2, 0)) for _ in (0, 1)]
    assert forward[0]["equation"] == "w·x + b = 0.5 × 1 + (-0.4) × 0.5 + 0.1 = 0.4"
    assert forward[1]["equation"] == "relu(0.4) = 0.4"
    assert sorted(forward[0]["edges"]) == [["L0N0-L1N0", "x0·w = 0.5"], ["L0N1-L1N0", "x1·w = -0.2"]]
    after_forward = seen[len(forward)]
    assert [after_forward["circles"][f"L1N{j}"][1] for j in range(3)] == [f"{h.data:.3g}" for h in ref["hidden"]]
    assert [after_forward["circles"][f"L1N{j}"][1] for j in range(3)] == ["0.4", "0.3", "0.05"]
    assert after_forward["circles"]["prediction"] == ["prediction", "0.6399", "Yes (64.0% confidence)"]
    assert after_forward["equation"] == "prediction = 0.6399  ->  Yes (64.0% confidence)"
    # backward: every number is the one backward() gives
    by_title = {s["title"]: s for s in seen}
    assert by_title["Loss · binary_cross_entropy"]["equation"].endswith(f" = {fmt(ref['loss'].data)}")
    for li, neurons in ((1, [ref["out"]]), (0, ref["hidden"])):
        layer = ref["net"].layers[li]
        for j, out in enumerate(neurons):
            where = f"layer {li} ({layer.activation}), neuron n{j}"
            raw = ref["raw"][3 if li else j]
            assert by_title[f"Backward · {where}: ∂L/∂out"]["equation"].endswith(f"= {fmt(out.grad)}")
            assert by_title[f"Backward · {where}: ∂L/∂raw"]["equation"].endswith(f"= {fmt(raw.grad)}")
            dw = by_title[f"Backward · {where}: ∂L/∂w for each incoming edge"]
            for i, w in enumerate(layer.neurons[j].w):
                assert f"∂L/∂w{i} = " in dw["equation"] and f"= {fmt(w.grad)};" in dw["equation"]
                assert [f"L{li}N{i}-L{li + 1}N{j}", f"∂L/∂w = {fmt(w.grad)}"] in dw["edges"]
            assert f"∂L/∂b = 1 × ∂L/∂raw = {fmt(layer.neurons[j].b.grad)}" in dw["equation"]
            assert [f"L{li + 1}N{j}", f"∂L/∂out = {fmt(out.grad)}∂L/∂raw = {fmt(raw.grad)}"] in dw["sides"]
    assert ref["out"].grad != 1 and len({fmt(h.grad) for h in ref["hidden"]}) == 3  # gradients of the loss
    last = seen[-1]
    assert last["title"] == "New prediction, after one step"
    assert f"prediction 0.6399 -> {fmt(ref['new'])}" in last["equation"]
    assert last["circles"]["prediction"][:2] == ["after one step", fmt(ref["new"])]
    assert not page.errors, page.errors
    page.screenshot(path=str(shots(tmp_path) / "network-800-end.png"), full_page=True)
    # readable at 800 px: the picture fits without shrinking, no text under 11 px
    assert page.evaluate("() => { const g = document.getElementById('graph'); return g.scrollWidth <= g.clientWidth; }")
    small = [t for t in page.evaluate(TEXT_SIZES) if t[1] < 11]
    assert not small, small
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(Path(path).as_uri() + "#step=14")
    page.reload()
    assert read(page)["step"] == "14"
    page.screenshot(path=str(shots(tmp_path) / "network-1400-step14.png"), full_page=True)
    assert not [t for t in page.evaluate(TEXT_SIZES) if t[1] < 11]


OVERLAPS = """() => {
  const boxes = id => Array.from(document.querySelectorAll(id)).filter(t => t.textContent.trim()).map(t => t.getBoundingClientRect());
  const hits = [];
  for (const a of boxes("#prediction text")) for (const b of boxes("text.side"))
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) hits.push([a.left, a.right, b.left, b.right]);
  return hits;
}"""


@pytest.mark.parametrize("case", ["narrow", "wide", "several outputs"])
def test_network_page_keeps_the_output_gradient_labels_off_the_prediction_box(page, tmp_path, case):
    net, x, target, loss = {
        "narrow": (lesson_network(), [1.0, 0.5], 1.0, None),  # "Yes (64.0% confidence)"
        "wide": (MLP(10, [4, 1], seed=0), [0.1 * i for i in range(10)], 1.0, None),  # "class 0 (score ... threshold 0)"
        "several outputs": (MLP(3, [4, 3], seed=0), [0.1, 0.2, 0.3], 1, "cross_entropy")}[case]
    path = viz.animate_network(net, x, tmp_path / "net.html", target=target, loss=loss)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(Path(path).as_uri())
    labelled = 0
    for k in range(1, int(page.get_attribute("#slider", "max")) + 1):
        page.keyboard.press("ArrowRight")
        assert not page.evaluate(OVERLAPS), (k, page.evaluate(OVERLAPS))
        labelled += page.evaluate("document.querySelectorAll('text.side').length") > 0
    assert labelled  # the labels were there to overlap
    page.screenshot(path=str(shots(tmp_path) / f"network-labels-{case.replace(' ', '-')}.png"), full_page=True)
    assert not page.errors, page.errors


def test_quiz_checks_answers_to_the_shown_precision_and_keeps_score(page, tmp_path):
    path = viz.animate_network(lesson_network(), [1.0, 0.5], tmp_path / "quiz.html", target=1.0, quiz=True)
    page.goto(Path(path).as_uri())
    page.keyboard.press("ArrowRight")
    now = read(page)
    assert now["waiting"] == "1" and now["equation"] == "" and now["circles"]["L1N0"][1] == "?"
    assert page.inner_text("#question") == "What is w·x + b for layer 0 (relu), neuron n0?"
    page.fill("#answer", "0.4")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback") == "Right: 0.4."
    assert page.inner_text("#score") == "score: 1 right of 1 answered"
    assert read(page)["circles"]["L1N0"][1] == "Σ 0.4" and read(page)["waiting"] == "0"
    page.keyboard.press("ArrowRight")  # the activation: answer wrong
    page.fill("#answer", "0.5")
    page.click("#check")
    feedback = page.inner_text("#feedback")
    assert feedback == "Not quite: you typed 0.5, the answer is 0.4. Worked out: relu(0.4) = 0.4"
    assert page.inner_text("#score") == "score: 1 right of 2 answered"
    page.keyboard.press("ArrowRight")  # next neuron: 0.2×1 + 0.8×0.5 - 0.3 = 0.3; one digit off in the 4th passes
    page.fill("#answer", "0.3001")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback").startswith("Right")
    page.set_viewport_size({"width": 800, "height": 900})
    page.keyboard.press("ArrowRight")
    page.screenshot(path=str(shots(tmp_path) / "quiz-800.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.fill("#answer", "abc")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback") == "Type a number, like 0.25 or -1.5."
    page.screenshot(path=str(shots(tmp_path) / "quiz-1400.png"), full_page=True)
    assert not page.errors, page.errors


def test_quiz_takes_only_decimal_numbers(page, tmp_path):
    path = viz.animate_network(lesson_network(), [1.0, 0.5], tmp_path / "quiz.html", target=1.0, quiz=True)
    page.goto(Path(path).as_uri())
    page.keyboard.press("ArrowRight")  # w·x + b = 0.4
    for typed in ("0x10", "0X1a", "0b1", "0o7", "Infinity", "-Infinity", "1e999", "1_0", "--1", "."):
        page.fill("#answer", typed)
        page.press("#answer", "Enter")
        assert page.inner_text("#feedback") == "Type a number, like 0.25 or -1.5.", typed
        assert page.inner_text("#score") == "score: 0 right of 0 answered", typed
    page.fill("#answer", " \u22120,4 ")  # a Unicode minus and a decimal comma, in spaces: read, and wrong
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback").startswith("Not quite: you typed -0.4, the answer is 0.4.")
    page.keyboard.press("ArrowRight")
    page.fill("#answer", "4e-1")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback") == "Right: 0.4."  # relu(0.4)
    page.keyboard.press("ArrowRight")
    page.fill("#answer", "+.3")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback") == "Right: 0.3."  # the next neuron's sum
    assert not page.errors, page.errors


def test_console_errors_are_caught(page):
    page.set_content("<html><body><script>undefinedFunction();</script></body></html>")
    assert page.errors


def test_animation_steps_offline_and_shows_the_engines_numbers(page, tmp_path):
    o = neuron_graph()
    path = tmp_path / "anim.html"
    viz.animate(o, path)
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) and "@import" not in text
    steps = viz.animation_steps(o)
    order = mg.topological_order(o)  # every node is drawn: the graph has no folded constants
    forward = [f"v{i}" for i, v in enumerate(order) if v.inputs]
    assert [s["id"] for s in steps[:len(forward)]] == forward
    assert [s["id"] for s in steps[len(forward):]] == [f"v{i}" for i in reversed(range(len(order)))]
    page.goto(path.as_uri())
    local_labels = "() => Array.from(document.querySelectorAll('g.edge text')).filter(t => t.style.visibility !== 'hidden').length"
    assert page.evaluate(local_labels) == 0  # no local derivative before the forward pass computes it
    seen = []
    for k in range(len(steps) + 1):
        if k:
            page.keyboard.press("ArrowRight")
        assert page.evaluate("document.body.dataset.step") == str(k)
        active = page.evaluate("Array.from(document.querySelectorAll('#graph g.node.active')).map(g => g.id)")
        seen.append(active)
        if k == 0:
            assert active == [] and "data ?" in page.locator("#graph text").all_text_contents()
            continue
        step = steps[k - 1]
        assert step["id"] in active
        node = order[int(step["id"][1:])]
        number = viz.fmt(node.data if step["kind"] == "data" else node.grad)
        assert f"{step['kind']} {number}" in page.locator(f"#{step['id']} text").all_text_contents()
        assert f"= {number}" in page.inner_text("#equation")
    assert len({tuple(a) for a in seen}) == len(seen)  # stepping moves the highlight
    assert page.evaluate(local_labels) == sum(len(v.inputs) for v in order if v.inputs)
    shown = page.locator("#graph text").all_text_contents()
    assert "grad ?" not in shown and "data ?" not in shown
    # captions name what the picture shows and say the arithmetic
    captions = {s["title"]: s["equation"] for s in steps}
    assert captions["Backward: grad of w1"] == "grad of w1 += x1 × grad(x1*w1) = 2 × 0.5 = 1"
    assert captions["Backward: grad of o"] == "grad of o = 1 (∂o/∂o)"
    assert not any(re.search(r"\bv\d+\b", s["title"] + s["caption"] + s["equation"]) for s in steps)
    assert not [t for t in page.evaluate(TEXT_SIZES) if t[1] < 11]
    assert not page.errors, page.errors
    with pytest.raises(FileExistsError):
        viz.animate(o, path)


def test_animation_page_writes_a_compound_name_after_a_derivative_sign_in_parentheses(page, tmp_path):
    x = Value(1.0, label="x")
    out = ((x + 2) * 3) * (Value(2) * 3)
    out.backward()
    path = viz.animate(out, tmp_path / "compound.html")
    page.goto(Path(path).as_uri() + "#step=4")  # the product's forward step: its local derivatives
    assert page.inner_text("#equation").endswith("local derivatives: ∂/∂((x + 2)*3) = 6; ∂/∂(2*3) = 9")
    page.keyboard.press("ArrowRight")  # the first backward step
    assert page.inner_text("#equation") == "grad of (x + 2)*3*(2*3) = 1 (∂((x + 2)*3*(2*3))/∂((x + 2)*3*(2*3)))"
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#equation").startswith("grad of (x + 2)*3 = (2*3) × grad((x + 2)*3*(2*3))")
    page.screenshot(path=str(shots(tmp_path) / "animation-compound-backward.png"), full_page=True)
    assert not page.errors, page.errors


def test_animation_scrolls_each_active_node_fully_into_view(page, tmp_path):
    x = Value(1.0, label="x")
    out = ((x + 2) * 3) * (Value(2) * 3)  # wider than the window at 100%: the graph scrolls sideways
    out.backward()
    path = viz.animate(out, tmp_path / "wide.html")
    page.set_viewport_size({"width": 900, "height": 700})
    page.goto(Path(path).as_uri())
    room = page.evaluate("() => { const g = document.getElementById('graph'); return [g.scrollWidth, g.clientWidth]; }")
    assert room[0] > room[1]
    for _ in range(int(page.get_attribute("#slider", "max"))):
        page.keyboard.press("ArrowRight")
        gap = page.evaluate("""() => {
          const g = document.getElementById("graph").getBoundingClientRect();
          const a = document.querySelector("#graph g.active");
          if (!a) return null;
          const r = a.getBoundingClientRect();
          return Math.min(r.left - g.left, g.right - r.right);
        }""")
        assert gap is None or gap >= 16, gap  # the node and its ring, with room around them
    assert not page.errors, page.errors


def test_animation_quiz_asks_for_values_and_grads(page, tmp_path):
    path = viz.animate(neuron_graph(), tmp_path / "quiz.html", quiz=True)
    page.goto(path.as_uri() if hasattr(path, "as_uri") else Path(path).as_uri())
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#question") == "What is the value of x1*w1?"
    page.fill("#answer", "-6")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback") == "Right: -6."
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    assert page.inner_text("#question") == "What is the grad of x1?"
    page.fill("#answer", "1")
    page.press("#answer", "Enter")
    assert page.inner_text("#feedback").startswith("Not quite: you typed 1, the answer is -1.5. Worked out: grad of x1")
    assert page.inner_text("#score") == "score: 1 right of 2 answered"
    assert not page.errors, page.errors



def test_animation_finds_cells_by_place_not_by_a_label_that_reads_data_or_grad(page, tmp_path):
    x, w = Value(2.0, label="data_x"), Value(-3.0, label="grad_w")
    p = x * w
    p.label = "data 5"
    o = p.tanh()
    o.label = "grad\nof everything"
    o.backward()
    path = viz.animate(o, tmp_path / "labels.html", quiz=True)
    page.goto(Path(path).as_uri())
    labels = ["data_x", "grad_w", "data 5", "grad", "of everything"]
    answers = [viz.fmt(v) for v in (x.grad, w.grad, p.data, p.grad, o.data)]

    def node_texts():
        return page.evaluate("Array.from(document.querySelectorAll('#graph g.node text')).map(t => t.textContent)")
    before = node_texts()
    assert all(label in before for label in labels), before  # no label overwritten
    assert not [t for t in before if any(t.endswith(" " + a) for a in answers)], before  # no answer shown
    assert before.count("grad ?") == 4 and before.count("data ?") == 2  # every grad, every computed value
    page.keyboard.press("End")  # the last step, x's grad, is the question still open
    after = node_texts()
    assert all(label in after for label in labels), after
    assert {f"grad {viz.fmt(v.grad)}" for v in (w, p, o)} | {f"data {viz.fmt(v.data)}" for v in (p, o)} \
        <= set(after) and after.count("grad ?") == 1 and after[after.index("data_x") + 2] == "grad ?"
    assert not page.errors, page.errors

def test_page_data_cannot_end_the_script(tmp_path):
    x = Value(1.0, label="</script><!--<script>alert(1)</script>")
    y = x * 2
    y.backward()
    text = Path(viz.animate(y, tmp_path / "a.html")).read_text()
    script = text[text.index("const STEPS"):]
    assert "</script>" not in script[:script.index("\n")] and "<!--" not in script[:script.index("\n")]


def test_arrow_keys_on_the_focused_slider_step_once(page, tmp_path):
    path = viz.animate(neuron_graph(), tmp_path / "slider.html")
    page.goto(Path(path).as_uri())
    page.focus("#slider")  # as after dragging it
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.body.dataset.step") == "2"
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.body.dataset.step") == "1" and page.input_value("#slider") == "1"
    page.keyboard.press("End")
    assert page.evaluate("document.body.dataset.step") == page.get_attribute("#slider", "max")
    assert not page.errors, page.errors


def test_two_pages_in_one_notebook_output_step_apart_and_never_scroll_the_notebook(page, tmp_path):
    import html
    first = Path(viz.animate(neuron_graph(), tmp_path / "a.html", quiz=True)).read_text()
    second = Path(viz.animate_network(lesson_network(), [1.0, 0.5], tmp_path / "b.html")).read_text()
    frame = '<iframe srcdoc="{}" width="100%" height="600"></iframe>'  # as the README shows them
    page.set_content(f"<p>cell 1</p>{frame.format(html.escape(first))}<p style='height:2000px'>more cells</p>"
                     f"{frame.format(html.escape(second))}")
    a, b = page.frames[1:]
    a.click("#next")  # the learner works in the first page, at the top of the notebook
    for _ in range(3):
        b.evaluate("document.getElementById('next').click()")  # the second page steps (or plays) below
    assert a.evaluate("document.body.dataset.step") == "1" and b.evaluate("document.body.dataset.step") == "3"
    assert page.evaluate("scrollY") == 0  # the notebook stays where the learner is
    assert not page.errors, page.errors


def test_a_long_unbroken_label_wraps_inside_a_phone_wide_page(page, tmp_path):
    w = Value(-3.0, label="w" * 150)
    out = (Value(2.0, label="x") * w).tanh()
    out.backward()
    path = viz.animate(out, tmp_path / "long.html", title="t" * 150, quiz=True)
    page.set_viewport_size({"width": 375, "height": 700})
    page.goto(Path(path).as_uri())
    page.keyboard.press("ArrowRight")  # the caption names w; the question too
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing runs off the side
    assert not page.errors, page.errors
