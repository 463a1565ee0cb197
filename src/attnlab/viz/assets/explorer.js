/* attnlab explorer page: sends the text to the local server and draws the returned views. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let payload = null, view = "head";

  function show(msg, isError) {
    const s = $("al-status");
    s.textContent = msg;
    s.className = isError ? "al-error" : "al-note";
  }
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
    const body = { text: $("al-text").value };
    const pair = $("al-pair") ? $("al-pair").value.trim() : "";
    if (pair) body.pair = pair;
    show("running…", false);
    try {
      const res = await fetch("api/view", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await res.json();
      if (!res.ok) {
        const d = data.detail;
        show(typeof d === "string" ? d : JSON.stringify(d), true);
        return;
      }
      payload = data.payload;
      drawPrediction(data.prediction);
      show(data.tokens.length + " tokens, " + payload.layers.length + " layers", false);
      await draw();
    } catch (err) {
      show("request failed: " + err.message, true);
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    $("al-form").addEventListener("submit", run);
    for (const b of document.querySelectorAll("button.al-tab")) {
      b.addEventListener("click", () => {
        view = b.dataset.view;
        for (const o of document.querySelectorAll("button.al-tab")) o.classList.toggle("on", o === b);
        draw();
      });
    }
  });
})();
