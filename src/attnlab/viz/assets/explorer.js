/* attnlab explorer page: sends the text to the local server and draws the returned views.
 * The prefilled text is run on load; Ctrl+Enter (Cmd+Enter) runs from either text box. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let payload = null, view = "head", seq = 0;

  function show(msg, isError) {
    const s = $("al-status");
    s.textContent = msg;
    s.className = isError ? "al-error" : "al-note";
  }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function drawPrediction(pred) {
    const box = $("al-prediction");
    box.textContent = "";
    if (!pred) return;
    const best = Object.keys(pred).sort((a, b) => pred[b] - pred[a]);
    for (const label of best) {
      const row = document.createElement("div");
      row.className = "al-pred-row";
      const name = document.createElement("span");
      name.textContent = label;
      const bar = document.createElement("span");
      bar.className = "al-bar";
      bar.style.width = Math.round(pred[label] * 200) + "px";
      const val = document.createElement("span");
      val.textContent = pred[label].toFixed(3);
      row.append(name, bar, val);
      box.append(row);
    }
  }
  async function draw() {
    if (!payload) return;
    const root = $("attnlab-root");
    await window.attnlab.mount(root, Object.assign({}, payload, { view: view }));
  }
  async function run(ev) {
    if (ev) ev.preventDefault();
    const text = $("al-text").value;
    if (!text.trim()) { show("type a text first", true); return; }
    const body = { text: text };
    const pair = $("al-pair") ? $("al-pair").value.trim() : "";
    if (pair) body.pair = pair;
    const mine = ++seq; // a slower earlier answer must not overwrite a newer one
    show("running…", false);
    try {
      const res = await fetch("api/view", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await res.json();
      if (mine !== seq) return;
      if (!res.ok) {
        const d = data.detail;
        show(typeof d === "string" ? d : (Array.isArray(d) ? d.join("; ") : JSON.stringify(d)), true);
        return;
      }
      payload = data.payload;
      drawPrediction(data.prediction);
      let status = plural(data.tokens.length, "token") + ", " + plural(payload.layers.length, "layer");
      if (data.truncated) status += " (cut from " + data.truncated.total + " tokens)";
      show(status, false);
      await draw();
    } catch (err) {
      if (mine === seq) show("request failed: " + err.message, true);
    }
  }
  function start() {
    $("al-form").addEventListener("submit", run);
    for (const id of ["al-text", "al-pair"]) {
      const box = $(id);
      if (box) box.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) run(ev);
      });
    }
    for (const b of document.querySelectorAll("button.al-tab")) {
      b.addEventListener("click", () => {
        view = b.dataset.view;
        for (const o of document.querySelectorAll("button.al-tab")) o.classList.toggle("on", o === b);
        draw();
      });
    }
    if ($("al-text").value.trim()) run(); // the prefilled text is shown without a click
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
