/* attnlab offline image-explanation view: an image with an explanation map over it.
 * Pick the example, the method, the layer and the head; hover a patch to see what it
 * attends to (attention and rollout methods). No network, no dependencies; payload text
 * is inserted with textContent only. Entry point: attnlabImage.mount(root, payload). */
(function () {
  "use strict";
  const A = (window.attnlabImage = window.attnlabImage || {});
  const SCALE = 12; // screen pixels per image pixel (before the CSS size)

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function inflate(buf) {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser has no DecompressionStream; use a current Chrome, Firefox or Safari");
    }
    const stream = new Blob([buf]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  // A matrix {r, c, s, d}: uint8 cells relative to each row's maximum (s: float32 maxima).
  async function decode(m) {
    const q = await inflate(bytes(m.d));
    const scale = new Float32Array(bytes(m.s).buffer);
    const v = new Float32Array(m.r * m.c);
    for (let i = 0; i < m.r; i++) {
      const f = scale[i] / 255, o = i * m.c;
      for (let j = 0; j < m.c; j++) v[o + j] = q[o + j] * f;
    }
    return { rows: m.r, cols: m.c, v: v };
  }
  // inferno-like ramp for the heat
  const STOPS = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  function ramp(t) {
    t = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
    const k = Math.min(Math.floor(t), STOPS.length - 2), f = t - k;
    return [0, 1, 2].map((c) => STOPS[k][c] + (STOPS[k + 1][c] - STOPS[k][c]) * f);
  }

  A.mount = async function (root, data) {
    root.textContent = "";
    root.classList.add("attnlab-view", "al-image-view");
    const st = { ex: 0, method: data.methods[0], layer: data.layers - 1, head: "mean", query: null };
    const cache = new Map();
    async function get(key, m) {
      if (!cache.has(key)) cache.set(key, decode(m));
      return cache.get(key);
    }
    const title = el("div", { class: "al-title" }, data.title || "");
    const bar = el("div", { class: "al-toolbar" });
    const note = el("div", { class: "al-note" });
    const wrap = el("div", { class: "al-image-wrap" });
    const canvas = el("canvas", { class: "al-image" });
    const caption = el("div", { class: "al-caption" });
    wrap.append(canvas, caption);
    root.append(title, bar, note, wrap);
    const attnMethod = (m) => m === "attention" || m === "rollout";

    function select(label, options, value, onchange, cls) {
      const w = el("label", {}, label + " ");
      const s = el("select", { class: cls });
      for (const [v, text] of options) {
        const o = el("option", { value: v }, text);
        if (String(v) === String(value)) o.selected = true;
        s.append(o);
      }
      s.addEventListener("change", () => onchange(s.value));
      w.append(s);
      return w;
    }
    function toolbar() {
      bar.textContent = "";
      if (data.examples.length > 1) {
        bar.append(select("example", data.examples.map((e, i) => [i, i + ": " + e.label]), st.ex,
          (v) => { st.ex = Number(v); st.query = null; draw(); }, "al-example"));
      }
      bar.append(select("method", data.methods.map((m) => [m, m]), st.method,
        (v) => { st.method = v; st.query = null; toolbar(); draw(); }, "al-method"));
      if (attnMethod(st.method)) {
        bar.append(select("layer", Array.from({ length: data.layers }, (_, i) => [i, "layer " + i]),
          st.layer, (v) => { st.layer = Number(v); draw(); }, "al-layer"));
      }
      if (st.method === "attention") {
        const heads = [["mean", "mean of heads"]].concat(
          Array.from({ length: data.heads }, (_, h) => [h, "head " + h]));
        bar.append(select("head", heads, st.head, (v) => { st.head = v; draw(); }, "al-headsel"));
      }
    }

    // The (H, W) heat of the current state, as a Float32Array over patches or pixels.
    async function heat() {
      const ex = data.examples[st.ex];
      const [gh, gw] = data.grid || [0, 0];
      if (!attnMethod(st.method)) {
        const m = await get(st.ex + ":" + st.method, ex.maps[st.method]);
        return { v: m.v, h: m.rows, w: m.cols, kind: "pixels" };
      }
      const t = data.prefix + gh * gw;
      const q = st.query == null ? 0 : data.prefix + st.query;
      let row = new Float32Array(t);
      if (st.method === "rollout") {
        const m = await get(st.ex + ":rollout", ex.rollout);  // (L * T, T)
        row = m.v.slice((st.layer * t + q) * t, (st.layer * t + q + 1) * t);
      } else {
        const m = await get(st.ex + ":attn", ex.attention);  // (L * H * T, T)
        const hs = st.head === "mean" ? Array.from({ length: data.heads }, (_, h) => h) : [Number(st.head)];
        for (const h of hs) {
          const o = ((st.layer * data.heads + h) * t + q) * t;
          for (let j = 0; j < t; j++) row[j] += m.v[o + j] / hs.length;
        }
      }
      return { v: row.slice(data.prefix), h: gh, w: gw, kind: "patches", prefixValue: row[0] };
    }

    async function draw() {
      const ex = data.examples[st.ex];
      const [c, h, w] = ex.shape;
      const img = bytes(ex.pixels);
      const map = await heat();
      canvas.width = w * SCALE;
      canvas.height = h * SCALE;
      const ctx = canvas.getContext("2d");
      const out = ctx.createImageData(canvas.width, canvas.height);
      let max = 0;
      for (let i = 0; i < map.v.length; i++) if (map.v[i] > max) max = map.v[i];
      let min = max;
      for (let i = 0; i < map.v.length; i++) if (map.v[i] < min) min = map.v[i];
      const span = max - min || 1;
      let checksum = 0;
      for (let y = 0; y < canvas.height; y++) {
        for (let x = 0; x < canvas.width; x++) {
          const py = Math.floor(y / SCALE), px = Math.floor(x / SCALE);
          const my = Math.min(map.h - 1, Math.floor((py * map.h) / h));
          const mx = Math.min(map.w - 1, Math.floor((px * map.w) / w));
          const t = (map.v[my * map.w + mx] - min) / span;
          const a = 0.6 * t, col = ramp(t), o = (y * canvas.width + x) * 4;
          for (let k = 0; k < 3; k++) {
            const g = img[(c === 3 ? k : 0) * h * w + py * w + px];
            out.data[o + k] = g * (1 - a) + col[k] * a;
          }
          out.data[o + 3] = 255;
          if (x % SCALE === 0 && y % SCALE === 0) checksum = (checksum * 31 + out.data[o]) % 1000003;
        }
      }
      ctx.putImageData(out, 0, 0);
      if (map.kind === "patches" && st.query != null) {
        const ph = (h / map.h) * SCALE, pw = (w / map.w) * SCALE;
        ctx.strokeStyle = "#22d3ee";
        ctx.lineWidth = 2;
        ctx.strokeRect((st.query % map.w) * pw + 1, Math.floor(st.query / map.w) * ph + 1, pw - 2, ph - 2);
      }
      root.dataset.method = st.method;
      root.dataset.query = st.query == null ? "cls" : String(st.query);
      root.dataset.checksum = String(checksum);
      caption.textContent = ex.label;
      if (attnMethod(st.method)) {
        const who = st.query == null ? "[CLS]" : "patch (" + Math.floor(st.query / map.w) + ", " + (st.query % map.w) + ")";
        note.textContent = (st.method === "rollout" ? "rollout up to layer " + st.layer : "layer " + st.layer +
          (st.head === "mean" ? ", mean of heads" : ", head " + st.head)) + ": what " + who +
          " attends to (to [CLS] itself: " + (map.prefixValue || 0).toFixed(3) + "); hover a patch to pick the query";
      } else {
        note.textContent = st.method + " map (max " + max.toPrecision(3) + ")";
      }
    }

    canvas.addEventListener("mousemove", (ev) => {
      if (!attnMethod(st.method) || !data.grid) return;
      const r = canvas.getBoundingClientRect();
      const [gh, gw] = data.grid;
      const gy = Math.min(gh - 1, Math.floor(((ev.clientY - r.top) / r.height) * gh));
      const gx = Math.min(gw - 1, Math.floor(((ev.clientX - r.left) / r.width) * gw));
      const q = gy * gw + gx;
      if (q !== st.query) { st.query = q; draw(); }
    });
    canvas.addEventListener("mouseleave", () => {
      if (st.query != null) { st.query = null; draw(); }
    });
    try {
      toolbar();
      await draw();
    } catch (e) {
      note.textContent = "";
      note.append(el("span", { class: "al-error" }, String(e.message || e)));
    }
    root.dataset.ready = "1";
  };
})();
