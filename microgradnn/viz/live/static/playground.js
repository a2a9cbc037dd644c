// The microgradnn playground page. Every number it shows comes from the server (the engine);
// the page only draws them. The configuration lives in the URL's query string.
"use strict";
(function () {
  const $ = id => document.getElementById(id);
  const PALETTE = ["#E67E22", "#2E86C1", "#27AE60", "#8E44AD", "#C0392B", "#16A085", "#D4AC0D", "#7F8C8D"];
  const POLL_MS = 250, NETWORK_MS = 2000;
  const KEYS = ["dataset", "samples", "noise", "classes", "test", "seed", "hidden", "activation", "loss",
                "optimizer", "lr", "batch", "l2"];
  const S = {config: null, points: null, dataVersion: -1, history: [], lastEpoch: 0, last: null,
             point: null, param: null, typed: false, running: false, networkAt: 0, pollTimer: null};

  // ---- talking to the server -------------------------------------------------------------
  async function api(path, body, type) {
    const init = body === undefined ? {} : {method: "POST", headers: {"Content-Type": type || "application/json"},
                                            body: type ? body : JSON.stringify(body)};
    const r = await fetch(path, init);
    const payload = await r.json();
    if (!r.ok) throw new Error(payload.error || r.statusText);
    return payload;
  }
  // Messages: the last action's refusal (until the next action), the training's, the connection's.
  const said = {action: "", training: "", connection: ""};
  function say(kind, text) {
    said[kind] = text || "";
    const m = $("message"), all = Object.values(said).filter(Boolean);
    m.textContent = all.join(" · "); m.hidden = !all.length;
  }
  async function guarded(fn) { try { say("action", ""); return await fn(); } catch (e) { say("action", e.message); } }

  // ---- configuration and the URL ---------------------------------------------------------
  function fromURL() {
    const q = new URLSearchParams(location.search), c = {};
    for (const k of KEYS) if (q.has(k)) c[k] = k === "hidden" ? q.get(k) : q.get(k);
    return c;
  }
  function toURL(c) {
    const q = new URLSearchParams();
    for (const k of KEYS) q.set(k, k === "hidden" ? c.hidden.join(",") : String(c[k]));
    history.replaceState(null, "", "?" + q.toString());
  }
  function showSetting(el, c) { el.value = String(c[el.dataset.key]); el.dataset.shown = el.value; }  // as it reads back
  function showConfig(c, keepEdited) {  // keepEdited: another tab's change leaves a control being edited alone
    S.config = c;
    document.querySelectorAll("[data-key]").forEach(el => {  // (focused is not edited: a select keeps the focus)
      if (keepEdited && el === document.activeElement && el.value !== el.dataset.shown) return;
      showSetting(el, c);
    });
    // only blobs and spiral take a number of classes; elsewhere the data decides it
    $("classes").disabled = !["blobs", "spiral"].includes(c.dataset);
    toURL(c);
  }
  // Changes to the setup, this tab's: one at a time, in order (a late answer must not undo a newer change);
  // `changes` counts those under way and `changed` those done, so a poll can tell another tab's change
  let configuring = Promise.resolve(), changes = 0, changed = 0;
  function inOrder(fn) {
    changes++;
    const run = configuring.then(fn).finally(() => { changes--; changed++; });
    configuring = run.catch(() => {});
    return run;
  }
  function configure(change) { return inOrder(() => configureNow(change)); }
  async function configureNow(change) {
    const before = S.dataVersion;
    let r;
    try { r = await api("api/config", change); }
    catch (e) { showConfig(S.config); throw e; }  // refused: the controls show what is in force
    showConfig(r.config);
    await refresh(true);
    if (S.dataVersion !== before) await afterRebuild();
  }
  async function afterRebuild() {
    S.point = null; S.pointGrads = null; $("point-panel").hidden = true;
    await loadParams();
    await refreshNetwork();
  }

  // ---- polling ---------------------------------------------------------------------------
  let refreshing = Promise.resolve();
  function refresh(force) {  // one at a time: two at once both add the epochs after the same one
    const run = refreshing.then(() => refreshNow(force));
    refreshing = run.catch(() => {});
    return run;
  }
  async function refreshNow(force) {
    const done = changed, dataBefore = S.dataVersion;
    const st = await api("api/state?since=" + S.lastEpoch);
    // a setup this tab did not ask for (none of its changes under way or answered since the poll left): another
    // tab's, shown here too, so that this tab's next change builds on it
    const theirs = changes === 0 && changed === done;
    if (theirs && JSON.stringify(st.config) !== JSON.stringify(S.config)) showConfig(st.config, true);
    if (st.data_version !== S.dataVersion || st.epoch < S.lastEpoch) {
      S.history = []; S.lastEpoch = 0;
      if (st.data_version !== S.dataVersion) { S.points = await api("api/points"); S.dataVersion = st.data_version; }
      await refreshNow(force);
      if (theirs && dataBefore !== -1 && S.dataVersion !== dataBefore) await afterRebuild();  // (or a reset there)
      return;
    }
    for (const h of st.history) S.history.push(h);
    if (st.history.length) S.lastEpoch = st.history[st.history.length - 1][0];
    S.last = st;
    const wasRunning = S.running;
    S.running = st.running;
    $("epoch").textContent = st.epoch;
    $("play").textContent = st.running ? "❚❚ pause" : "▶ play";
    say("training", st.error);
    if (st.metrics) showMetrics(st.metrics);
    if (st.boundary) drawBoundary(st.boundary);
    if (st.neurons) drawNeurons(st.neurons);
    drawCurves();
    const now = Date.now();
    if ((st.running && now - S.networkAt > NETWORK_MS) || (wasRunning && !st.running)) {
      S.networkAt = now;
      await (S.point === null ? refreshNetwork() : showPoint(S.point));
      if (S.param) await showParam(S.param, true);
    }
  }
  function poll() {
    clearTimeout(S.pollTimer);
    S.pollTimer = setTimeout(async () => {
      try { await refresh(false); say("connection", ""); }
      catch (e) { say("connection", "no answer from the playground server (" + e.message + ")"); }
      poll();
    }, POLL_MS);
  }

  function pct(a) { return (100 * a).toFixed(1) + "%"; }
  function showMetrics(m) {
    const cells = [["train-loss", m[0], v => v.toFixed(4)], ["test-loss", m[1], v => v.toFixed(4)],
                   ["train-acc", m[2], pct], ["test-acc", m[3], pct]];
    for (const [id, v, f] of cells) { $(id).textContent = f(v); $(id).dataset.value = String(v); }
  }

  // ---- pictures --------------------------------------------------------------------------
  function toPixel(x, y, ext, w, h) { return [(x - ext[0]) / (ext[1] - ext[0]) * w, (ext[3] - y) / (ext[3] - ext[2]) * h]; }

  function drawBoundary(b) {
    const cv = $("boundary"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height, n = b.grid;
    const k = Math.max(2, (S.last && S.last.classes) || 2);
    const cells = document.createElement("canvas"), cctx = cells.getContext("2d"), img = cctx.createImageData(n, n);
    cells.width = cells.height = n;
    for (let i = 0; i < n * n; i++) {  // one pixel per grid point, the class's colour as deep as its confidence
      const t = 0.12 + 0.5 * Math.max(0, (b.conf[i] - 1 / k) / (1 - 1 / k));
      const c = [1, 3, 5].map(j => parseInt(PALETTE[b.cls[i] % PALETTE.length].slice(j, j + 2), 16));
      img.data.set([...c.map(v => Math.round(255 + (v - 255) * t)), 255], 4 * i);
    }
    cctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    // grid point (r, c) sits at pixel (c / (n - 1) W, r / (n - 1) H): stretch the cell centres onto those
    ctx.drawImage(cells, -0.5 * W / (n - 1), -0.5 * H / (n - 1), W * n / (n - 1), H * n / (n - 1));
    if (!S.points) return;
    const test = new Set(S.points.test);
    S.points.X.forEach((p, i) => {
      const [px, py] = toPixel(p[0], p[1], S.points.extent, W, H);
      ctx.beginPath(); ctx.arc(px, py, 4, 0, 2 * Math.PI);
      ctx.fillStyle = test.has(i) ? "#fff" : PALETTE[S.points.y[i] % PALETTE.length];
      ctx.strokeStyle = test.has(i) ? PALETTE[S.points.y[i] % PALETTE.length] : "#fff";
      ctx.lineWidth = test.has(i) ? 2 : 1; ctx.fill(); ctx.stroke();
    });
    if (S.point !== null) {
      const p = S.points.X[S.point], [px, py] = toPixel(p[0], p[1], S.points.extent, W, H);
      ctx.beginPath(); ctx.arc(px, py, 8, 0, 2 * Math.PI); ctx.strokeStyle = "#111"; ctx.lineWidth = 2; ctx.stroke();
    }
  }

  function activationColor(a) {  // as draw_network fills neurons: purple below 0, orange above
    const t = Math.abs(a) / (Math.abs(a) + 0.5);
    const end = a > 0 ? [0xE6, 0x61, 0x01] : [0x5E, 0x3C, 0x99];
    return end.map(c => Math.round(255 + (c - 255) * t));
  }
  function drawNeurons(layers) {
    const box = $("neurons"), hidden = S.config.hidden;
    if (box.dataset.shape !== JSON.stringify(hidden)) {
      box.dataset.shape = JSON.stringify(hidden);
      box.innerHTML = "";
      hidden.forEach((size, li) => {
        const col = document.createElement("div"); col.className = "layer";
        col.innerHTML = `<span class="head">layer ${li} · ${size}</span><span class="sizes">` +
          `<button data-layer="${li}" data-d="1" title="add a neuron">+</button>` +
          `<button data-layer="${li}" data-d="-1" title="remove a neuron">−</button></span>`;
        for (let j = 0; j < size; j++) {
          const cv = document.createElement("canvas");
          cv.className = "neuron"; cv.width = cv.height = 32; cv.id = `neuron-${li}-${j}`;
          cv.title = `layers.${li}.neurons.${j}`;
          col.appendChild(cv);
        }
        box.appendChild(col);
      });
      if (!hidden.length) box.innerHTML = '<span class="hint">no hidden layers: a linear model</span>';
    }
    layers.forEach((neurons, li) => neurons.forEach((acts, j) => {
      const cv = $(`neuron-${li}-${j}`); if (!cv) return;
      const ctx = cv.getContext("2d"), n = Math.round(Math.sqrt(acts.length)), img = ctx.createImageData(n, n);
      acts.forEach((a, i) => { const c = activationColor(a); img.data.set([c[0], c[1], c[2], 255], 4 * i); });
      cv.width = cv.height = n; ctx.putImageData(img, 0, 0);
    }));
  }

  function drawCurves() {
    const cv = $("curves"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height, h = S.history;
    ctx.clearRect(0, 0, W, H);
    ctx.strokeStyle = "#ddd"; ctx.strokeRect(0.5, 0.5, W - 1, H - 1);
    if (!h.length) return;
    const n = h[h.length - 1][0], top = h.reduce((m, r) => Math.max(m, r[1], r[2]), 1e-9);  // no spread: 100000 epochs
    const line = (col, color, dash, scale) => {
      ctx.beginPath(); ctx.setLineDash(dash); ctx.strokeStyle = color; ctx.lineWidth = 1.5;
      h.forEach((r, i) => { const x = 4 + (W - 8) * (n > 1 ? (r[0] - 1) / (n - 1) : 0), y = H - 4 - (H - 8) * r[col] / scale;
                            i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
                            if (h.length === 1) { ctx.fillStyle = color; ctx.fillRect(x - 2, y - 2, 5, 5); } });  // a line of one point draws nothing
      ctx.stroke(); ctx.setLineDash([]);
    };
    line(1, "#2E86C1", [], top); line(2, "#E67E22", [], top);
    line(3, "#2E86C1", [4, 3], 1); line(4, "#E67E22", [4, 3], 1);
    $("curves-scale").textContent = `loss 0–${top.toPrecision(3)}, accuracy 0–100%, epochs 1–${n}`;
  }

  // ---- the network, its parameters, one point --------------------------------------------
  function paramOf(id) {
    let m = /^L(\d+)N(\d+)-L(\d+)N(\d+)$/.exec(id);
    if (m) return `layers.${m[1]}.neurons.${m[4]}.w.${m[2]}`;
    m = /^L(\d+)N(\d+)$/.exec(id);
    if (m && +m[1] > 0) return `layers.${+m[1] - 1}.neurons.${m[2]}.b`;
    return null;
  }
  function idOf(name) {
    let m = /^layers\.(\d+)\.neurons\.(\d+)\.w\.(\d+)$/.exec(name);
    if (m) return `L${m[1]}N${m[3]}-L${+m[1] + 1}N${m[2]}`;
    m = /^layers\.(\d+)\.neurons\.(\d+)\.b$/.exec(name);
    return m ? `L${+m[1] + 1}N${m[2]}` : null;
  }
  function showNetwork(svg) {
    $("network").innerHTML = svg;
    $("network").querySelectorAll("title").forEach(t => t.remove());  // the engine's tooltips would hide the hover
    markParam();
  }
  function showPointGrad() {  // the selected parameter's gradient from the selected point's own loss
    const box = $("param-point-box"), g = S.pointGrads && S.param ? S.pointGrads[S.param] : undefined;
    box.hidden = g === undefined;
    if (g !== undefined) { $("param-point").textContent = "#" + S.point; $("param-point-grad").textContent = String(g); }
  }
  function markParam() {
    $("network").querySelectorAll("g.selected").forEach(g => g.classList.remove("selected"));
    const g = S.param && document.getElementById(idOf(S.param));
    if (g) g.classList.add("selected");
  }
  async function refreshNetwork() { showNetwork((await api("api/network")).network); }
  async function loadParams() {
    const names = (await api("api/params")).names, sel = $("param-name");
    sel.innerHTML = names.map(n => `<option>${n}</option>`).join("");
    if (!names.includes(S.param)) S.param = null;
    sel.value = S.param || "";
    if (!S.param) { $("param-value").value = ""; $("param-grad").textContent = "–"; S.typed = false; }
  }
  function showGrad(p) {  // no gradient on a diverged model: say why instead of "null"
    $("param-grad").textContent = p.grad === null ? "–" : String(p.grad);
    $("param-grad").title = p.grad_error || "";
  }
  async function showParam(name, live) {  // live: the periodic refresh, which keeps a value being typed
    const p = await api("api/param?name=" + encodeURIComponent(name));
    if (!(live && S.typed && name === S.param)) { $("param-value").value = String(p.value); S.typed = false; }
    S.param = name; $("param-name").value = name;
    showGrad(p);
    markParam(); showPointGrad();
  }
  async function setParam() {
    if (!S.param) throw new Error("choose a parameter first (click an edge or a neuron of the network)");
    const p = await api("api/param", {name: S.param, value: $("param-value").value});
    $("param-value").value = String(p.value); S.typed = false; showGrad(p);
    await refresh(true);
    await (S.point === null ? refreshNetwork() : showPoint(S.point));
  }

  async function showPoint(i) {
    const p = await api(`api/point?i=${i}&expand=${$("expand").checked ? 1 : 0}`);
    S.point = i; S.pointGrads = p.grads;
    $("point-panel").hidden = false;
    $("point-title").textContent = `#${i} (${p.split})`;
    const outs = p.outputs.map(String).join(", ");
    $("point-info").innerHTML =
      `x = <code id="point-x">[${p.x.map(String).join(", ")}]</code>, label <b id="point-label">${p.label}</b> · ` +
      `output${p.outputs.length > 1 ? "s" : ""} <code id="point-output">${outs}</code> · ` +
      `prediction <b id="point-prediction">class ${p.prediction}</b> · loss <code id="point-loss">${String(p.loss)}</code>` +
      (p.note ? `<br><span class="hint">${p.note}</span>` : "");
    $("point-graph").innerHTML = p.graph || "";
    showNetwork(p.network);
    showPointGrad();
    if (S.last && S.last.boundary) drawBoundary(S.last.boundary);
  }
  function pointAt(ev) {
    if (!S.points) return null;
    const cv = $("boundary"), r = cv.getBoundingClientRect();
    const mx = (ev.clientX - r.left) * cv.width / r.width, my = (ev.clientY - r.top) * cv.height / r.height;
    let best = null, dist = 10 * 10;
    S.points.X.forEach((p, i) => {
      const [px, py] = toPixel(p[0], p[1], S.points.extent, cv.width, cv.height), d = (px - mx) ** 2 + (py - my) ** 2;
      if (d <= dist) { best = i; dist = d; }
    });
    return best;
  }

  // ---- wiring ----------------------------------------------------------------------------
  function control(action) { return guarded(async () => { await api("api/control", {action}); await refresh(true); }); }
  $("play").onclick = () => control(S.running ? "pause" : "play");
  $("step").onclick = () => control("step");
  $("reset").onclick = () => guarded(async () => { await api("api/control", {action: "reset"}); await refresh(true); await afterRebuild(); });
  document.querySelectorAll("[data-key]").forEach(el => {
    el.onchange = () => guarded(() => configure({[el.dataset.key]: el.value}));
    // left with no change sent (an edit undone): it shows the setting in force, which another tab may have changed
    el.onblur = () => {
      if (S.config && el.value === el.dataset.shown) showSetting(el, S.config);
    };
  });
  $("add-layer").onclick = () => guarded(() => configure({hidden: [...S.config.hidden, 4]}));
  $("remove-layer").onclick = () => guarded(() => configure({hidden: S.config.hidden.slice(0, -1)}));
  $("neurons").onclick = ev => {
    const b = ev.target.closest("button[data-layer]"); if (!b) return;
    const hidden = [...S.config.hidden], li = +b.dataset.layer;
    hidden[li] += +b.dataset.d;
    guarded(() => configure({hidden: hidden.filter(n => n > 0)}));
  };
  $("upload").onchange = () => guarded(async () => {
    const f = $("upload").files[0]; if (!f) return;
    if (f.size > 1000000) throw new Error(`${f.name} has ${f.size} bytes; the playground takes CSV files up to 1000000 bytes`);
    const text = await f.text();
    await inOrder(async () => {
      const before = S.dataVersion, r = await api("api/upload", text, "text/csv");
      showConfig(r.config); await refresh(true); if (S.dataVersion !== before) await afterRebuild();
    });
  });
  $("boundary").onclick = ev => { const i = pointAt(ev); if (i !== null) guarded(() => showPoint(i)); };
  $("expand").onchange = () => { if (S.point !== null) guarded(() => showPoint(S.point)); };
  $("network").onclick = ev => {
    const g = ev.target.closest("g.edge, g.node"), name = g && paramOf(g.id);
    if (name) guarded(() => showParam(name));
  };
  $("param-name").onchange = () => guarded(() => showParam($("param-name").value));
  $("param-set").onclick = () => guarded(setParam);
  $("param-value").oninput = () => { S.typed = true; };
  $("param-value").onkeydown = ev => { if (ev.key === "Enter") guarded(setParam); };

  // Tests and the curious read positions from here: where point i is drawn on the canvas.
  window.playground = {
    pointPixel(i) {
      const cv = $("boundary"), r = cv.getBoundingClientRect(), p = S.points.X[i];
      const [px, py] = toPixel(p[0], p[1], S.points.extent, cv.width, cv.height);
      return [r.left + px * r.width / cv.width, r.top + py * r.height / cv.height];
    },
    state: S,
  };

  guarded(async () => {
    let config;
    try { config = (await api("api/config", fromURL())).config; }
    catch (e) {  // a link this server refuses (a CSV it never got): open the setup in force, and say why
      config = (await api("api/state")).config;
      say("action", "the link's setup was refused (" + e.message + "); showing the setup in force");
    }
    showConfig(config);
    await refresh(true);
    await afterRebuild();
    document.body.dataset.ready = "1";
  }).finally(poll);
})();
