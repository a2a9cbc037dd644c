// The step player shared by microgradnn's animation pages: play/pause, step buttons, a slider,
// the keys Space, Left, Right, Home, End, `#step=N`, and the quiz. The page defines STEPS
// (each with title, caption, equation and, in a quiz, ask = {question, value, tol, shown}),
// QUIZ, INTRO and render(k, hide): draw the state after k steps, the k-th step's new values
// hidden when `hide` (the learner has not answered yet). Every number comes from Python.
"use strict";
const answers = {};  // step index -> {verdict: "right" | "wrong" | "revealed", typed}
let current = 0, timer = null;
const $ = id => document.getElementById(id);

function waiting(k) {
  return QUIZ && k > 0 && STEPS[k - 1].ask && !((k - 1) in answers);
}

function show(k) {
  current = Math.max(0, Math.min(STEPS.length, k));
  const hide = waiting(current);
  render(current, hide);
  const active = document.querySelector("#graph g.active");
  if (active) bringIntoView(active);
  $("slider").value = current;
  $("counter").textContent = "step " + current + " / " + STEPS.length;
  const s = current > 0 ? STEPS[current - 1] : null;
  $("title").textContent = s ? s.title : "";
  $("caption").textContent = s ? s.caption : INTRO;
  $("equation").textContent = s && !hide ? s.equation : "";
  showQuiz(s, hide);
  document.body.dataset.step = String(current);
  document.body.dataset.waiting = hide ? "1" : "0";
}

// The active node, with its ring and a margin, scrolled into view sideways in the graph box and up
// or down in this page's own window: never in a page around it (a notebook showing it in a frame).
function bringIntoView(el) {
  const graph = $("graph"), r = el.getBoundingClientRect(), box = graph.getBoundingClientRect(), m = 32;
  if (r.left - m < box.left) graph.scrollLeft += r.left - m - box.left;
  else if (r.right + m > box.right) graph.scrollLeft += Math.min(r.right + m - box.right, r.left - m - box.left);
  if (r.top - m < 0) window.scrollBy(0, r.top - m);
  else if (r.bottom + m > innerHeight) window.scrollBy(0, Math.min(r.bottom + m - innerHeight, r.top - m));
}

function showQuiz(s, hide) {
  if (!QUIZ) return;
  const box = $("quiz"), answer = s ? answers[current - 1] : undefined;
  box.hidden = !(s && s.ask);
  if (box.hidden) return;
  $("question").textContent = s.ask.question;
  if (!hide) $("answer").blur();  // answered: the arrow keys step again at once (a disabled input keeps focus a while)
  $("answer").disabled = !hide;
  $("check").disabled = $("reveal").disabled = !hide;
  const feedback = $("feedback");
  feedback.className = answer ? answer.verdict : "";
  if (hide) {
    $("answer").value = "";
    feedback.textContent = "Type your answer (checked to " + s.ask.precision + ") and press Enter, or Reveal.";
    if (!timer) $("answer").focus({preventScroll: true});
  } else if (answer.verdict === "right") {
    feedback.textContent = "Right: " + s.ask.shown + ".";
  } else if (answer.verdict === "wrong") {
    feedback.textContent = "Not quite: you typed " + answer.typed + ", the answer is " + s.ask.shown
      + ". Worked out: " + s.equation;
  } else {
    feedback.textContent = "Revealed: " + s.ask.shown + " (not scored).";
  }
}

function score() {
  const given = Object.values(answers).filter(a => a.verdict !== "revealed");
  const right = given.filter(a => a.verdict === "right").length;
  $("score").textContent = "score: " + right + " right of " + given.length + " answered";
}

function check() {
  if (!waiting(current)) return;
  const s = STEPS[current - 1];
  const typed = $("answer").value.trim().replace(/\u2212/g, "-").replace(/,/g, ".");
  // decimal only: Number() alone would read 0x10 as 16, 0b1, 0o7 and Infinity too
  const number = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(typed) ? Number(typed) : NaN;
  if (!Number.isFinite(number)) {
    $("feedback").textContent = "Type a number, like 0.25 or -1.5.";
    return;
  }
  answers[current - 1] = {verdict: Math.abs(number - s.ask.value) <= s.ask.tol ? "right" : "wrong", typed};
  score();
  show(current);
}

function reveal() {
  if (!waiting(current)) return;
  answers[current - 1] = {verdict: "revealed"};
  show(current);
}

function next() {
  if (waiting(current)) reveal();  // Right on an open question shows the answer first
  else show(current + 1);
}

function play() {
  if (timer) {
    clearInterval(timer); timer = null; $("play").innerHTML = "&#x25B6;"; $("play").title = "play (Space)";
    return;
  }
  if (current >= STEPS.length) show(0);
  $("play").innerHTML = "&#x23F8;"; $("play").title = "pause (Space)";
  timer = setInterval(() => {
    if (current >= STEPS.length || waiting(current)) {
      play();
      if (waiting(current)) $("answer").focus({preventScroll: true});
    }
    else show(current + 1);
  }, 900);
}

let zoom = 1;
function setZoom(z) {
  zoom = Math.max(1, Math.min(3, z));  // never below 1: the text would shrink under 11 px
  const svg = document.querySelector("#graph svg");
  svg.style.width = (svg.dataset.width * zoom) + "px";
  svg.style.height = (svg.dataset.height * zoom) + "px";
  $("zoomlevel").textContent = Math.round(zoom * 100) + "%";
}

(function start() {
  const svg = document.querySelector("#graph svg");
  const box = svg.viewBox.baseVal;  // Graphviz units are points: 1 pt = 4/3 px at 100%
  svg.dataset.width = box.width * 4 / 3;
  svg.dataset.height = box.height * 4 / 3;
  setZoom(1);
  $("slider").max = STEPS.length;
  $("first").onclick = () => show(0);
  $("prev").onclick = () => show(current - 1);
  $("next").onclick = next;
  $("play").onclick = play;
  $("slider").oninput = e => show(Number(e.target.value));
  $("zoomin").onclick = () => setZoom(zoom * 1.25);
  $("zoomout").onclick = () => setZoom(zoom / 1.25);
  if (QUIZ) {
    $("check").onclick = check;
    $("reveal").onclick = reveal;
    $("answer").addEventListener("keydown", e => { if (e.key === "Enter") { e.preventDefault(); check(); } });
    score();
  }
  document.addEventListener("keydown", e => {
    // the answer box takes every key; the slider steps itself on arrows, Home and End (twice if we did too)
    if (e.target.tagName === "INPUT" && (e.target.type === "text" || e.key !== " ")) return;
    if (e.key === "ArrowRight") next();
    else if (e.key === "ArrowLeft") show(current - 1);
    else if (e.key === "Home") show(0);
    else if (e.key === "End") show(STEPS.length);
    else if (e.key === " ") { e.preventDefault(); play(); }
  });
  const hash = /step=(\d+)/.exec(location.hash);
  show(hash ? Number(hash[1]) : 0);
})();
