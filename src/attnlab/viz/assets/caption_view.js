/* attnlab offline caption view: an image, its caption as buttons, and the attention of the
 * chosen word over the image. Pick the image, the layer and the head. No network, no
 * dependencies; payload text is inserted with textContent only.
 * Entry point: attnlabCaption.mount(root, payload). */
(function () {
  "use strict";
  const A = (window.attnlabCaption = window.attnlabCaption || {});
  const SCALE = 8; // screen pixels per image pixel (before the CSS size)

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
  const STOPS = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  function ramp(t) {
    t = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
    const k = Math.min(Math.floor(t), STOPS.length - 2), f = t - k;
    return [0, 1, 2].map((c) => STOPS[k][c] + (STOPS[k + 1][c] - STOPS[k][c]) * f);
  }

  A.mount = async function (root, data) {
    root.textContent = "";
    root.classList.add("attnlab-view", "al-caption-view");
    const st = { ex: 0, word: 0, layer: "mean", head: "mean" };
    const cache = new Map();
    const title = el("div", { class: "al-title" }, data.title || "");
    const bar = el("div", { class: "al-toolbar" });
    const words = el("div", { class: "al-words", role: "group", "aria-label": "caption words" });
    const canvas = el("canvas", { class: "al-image" });
    const note = el("div", { class: "al-note" });
    root.append(title, bar, words, canvas, note);

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
      const ex = data.examples[st.ex];
      bar.textContent = "";
      if (data.examples.length > 1) {
        bar.append(select("image", data.examples.map((e, i) => [i, i + ": " + e.label]), st.ex,
          (v) => { st.ex = Number(v); st.word = 0; st.layer = "mean"; st.head = "mean"; toolbar(); draw(); }, "al-example"));
      }
      if (ex.layers > 1) {
        bar.append(select("layer", [["mean", "mean of layers"]].concat(
          Array.from({ length: ex.layers }, (_, i) => [i, "layer " + i])), st.layer,
          (v) => { st.layer = v; draw(); }, "al-layer"));
      }
      if (ex.heads > 1) {
        bar.append(select("head", [["mean", "mean of heads"]].concat(
          Array.from({ length: ex.heads }, (_, h) => [h, "head " + h])), st.head,
          (v) => { st.head = v; draw(); }, "al-headsel"));
      }
      words.textContent = "";
      ex.words.forEach((w, k) => {
        const b = el("button", { type: "button", class: "al-word", "aria-pressed": String(k === st.word) }, w);
        b.addEventListener("click", () => { st.word = k; toolbar(); draw(); });
        words.append(b);
      });
      if (!ex.words.length) words.append(el("span", { class: "al-note" }, "(empty caption)"));
    }

    // The (h * w) attention of the chosen word, layer and head.
    async function heat(ex) {
      if (!ex.words.length || !ex.attention) return null;
      const key = st.ex;
      if (!cache.has(key)) cache.set(key, decode(ex.attention));
      const m = await cache.get(key); // (L * H * K, h * w)
      const k = ex.words.length, n = ex.grid[0] * ex.grid[1];
      const ls = st.layer === "mean" ? Array.from({ length: ex.layers }, (_, i) => i) : [Number(st.layer)];
      const hs = st.head === "mean" ? Array.from({ length: ex.heads }, (_, i) => i) : [Number(st.head)];
      const row = new Float32Array(n);
      for (const l of ls) {
        for (const h of hs) {
          const o = ((l * ex.heads + h) * k + st.word) * n;
          for (let j = 0; j < n; j++) row[j] += m.v[o + j] / (ls.length * hs.length);
        }
      }
      return row;
    }

    async function draw() {
      const ex = data.examples[st.ex];
      const [c, h, w] = ex.shape;
      const img = bytes(ex.pixels);
      const map = await heat(ex);
      const [gh, gw] = ex.grid;
      canvas.width = w * SCALE;
      canvas.height = h * SCALE;
      const ctx = canvas.getContext("2d");
      const out = ctx.createImageData(canvas.width, canvas.height);
      let max = 0, min = 0, arg = 0;
      if (map) {
        min = map[0];
        for (let i = 0; i < map.length; i++) {
          if (map[i] > max) { max = map[i]; arg = i; }
          if (map[i] < min) min = map[i];
        }
      }
      const span = max - min || 1;
      let checksum = 0;
      for (let y = 0; y < canvas.height; y++) {
        for (let x = 0; x < canvas.width; x++) {
          const py = Math.floor(y / SCALE), px = Math.floor(x / SCALE);
          let t = 0;
          if (map) {
            const my = Math.min(gh - 1, Math.floor((py * gh) / h));
            const mx = Math.min(gw - 1, Math.floor((px * gw) / w));
            t = (map[my * gw + mx] - min) / span;
          }
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
      if (map) { // the cell of maximum attention: what the pointing game checks
        const ch = (h / gh) * SCALE, cw = (w / gw) * SCALE;
        ctx.strokeStyle = "#22d3ee";
        ctx.lineWidth = 2;
        ctx.strokeRect((arg % gw) * cw + 1, Math.floor(arg / gw) * ch + 1, cw - 2, ch - 2);
      }
      root.dataset.word = ex.words.length ? ex.words[st.word] : "";
      root.dataset.cell = map ? String(arg) : "";
      root.dataset.checksum = String(checksum);
      const which = (st.layer === "mean" ? "layers averaged" : "layer " + st.layer) + ", " +
        (st.head === "mean" ? "heads averaged" : "head " + st.head);
      note.textContent = ex.label + (ex.notes.length ? " (" + ex.notes.join("; ") + ")" : "") + " · " +
        (map ? "where \u201c" + ex.words[st.word] + "\u201d looked (" + which + "); the box marks the maximum"
             : "no words to show");
    }

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
