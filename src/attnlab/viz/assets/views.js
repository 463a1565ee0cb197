/* attnlab offline attention views: head view (SVG), model view and matrix view (canvas).
 * No network and no dependencies. All text from the payload is inserted with
 * textContent, never as HTML. Entry point: attnlab.mount(rootElement, payload). */
(function () {
  "use strict";
  const A = (window.attnlab = window.attnlab || {});
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31",
    "#843c39", "#7b4173", "#3182bd"];
  const AGG_LABEL = { heads: "heads (per colour)", mean: "mean of heads", max: "max of heads",
    rollout: "rollout up to this layer" };
  const SVGNS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
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
  // A map is {r, c, s, d}: r x c cells quantised to uint8 relative to each row's maximum
  // (s: base64 float32 row maxima), d: base64 of the zlib-compressed uint8 cells.
  async function decode(m) {
    const q = await inflate(bytes(m.d));
    const scale = new Float32Array(bytes(m.s).buffer);
    const v = new Float32Array(m.r * m.c);
    let max = 0;
    for (let i = 0; i < m.r; i++) {
      const f = scale[i] / 255, o = i * m.c;
      for (let j = 0; j < m.c; j++) {
        const x = q[o + j] * f;
        v[o + j] = x;
        if (x > max) max = x;
      }
    }
    return { rows: m.r, cols: m.c, v: v, max: max || 1 };
  }

  // Colour ramps (value in [0, 1] -> [r, g, b]) for each theme.
  const RAMPS = {
    light: [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]],
    dark: [[22, 24, 29], [69, 39, 96], [177, 62, 83], [245, 134, 63], [252, 253, 191]],
  };
  function lut(theme) {
    const stops = RAMPS[theme] || RAMPS.light, out = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const t = (i / 255) * (stops.length - 1), k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
      for (let c = 0; c < 3; c++) out[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f;
    }
    return out;
  }
  function paint(canvas, map, theme, gamma, rows) {
    canvas.width = map.cols;
    canvas.height = rows ? rows.length : map.rows;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
    const ramp = lut(theme), px = img.data, inv = 1 / map.max;
    for (let y = 0; y < canvas.height; y++) {
      const o = (rows ? rows[y] : y) * map.cols;
      for (let x = 0; x < map.cols; x++) {
        let t = map.v[o + x] * inv;
        if (gamma !== 1) t = Math.pow(t, gamma);
        const k = Math.max(0, Math.min(255, Math.round(t * 255))) * 3, p = (y * map.cols + x) * 4;
        px[p] = ramp[k]; px[p + 1] = ramp[k + 1]; px[p + 2] = ramp[k + 2]; px[p + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  function short(t) { return t.length > 20 ? t.slice(0, 19) + "…" : t; }
  function fmt(x) { return x >= 0.001 || x === 0 ? x.toFixed(4) : x.toExponential(2); }

  A.mount = async function (root, data) {
    root.textContent = "";
    root.classList.add("attnlab-view");
    const st = {
      view: data.view || "head",
      layer: Math.min((data.initial && data.initial.layer) || 0, data.layers.length - 1),
      agg: (data.initial && data.initial.agg) || "mean",
      heads: new Set(), sel: new Set(), hover: null, pair: "all",
      gamma: data.tokens.length > 256 ? 0.5 : 1,
      detail: null,
    };
    root.dataset.theme = data.theme === "dark" ? "dark" : "light";
    const cache = new Map();
    async function getMap(l, key) {
      const id = l + ":" + key;
      if (!cache.has(id)) cache.set(id, decode(data.layers[l].maps[key]));
      return cache.get(id);
    }
    const layer = () => data.layers[st.layer];
    const headKeys = (L) => L.heads.map((h) => "h" + h);
    const selfAttn = (L) => (!L.role || L.role === "self") && L.tq === L.tk && L.tk === data.tokens.length;
    function qTokens(L) {
      if (data.qtokens && L.tq === data.qtokens.length && !selfAttn(L)) return data.qtokens;
      if (L.tq === data.tokens.length) return data.tokens;
      return L.tq === 1 ? [L.qlabel || "(pooled query)"] : Array.from({ length: L.tq }, (_, i) => "q" + i);
    }
    function kTokens(L) {
      return L.tk === data.tokens.length ? data.tokens : Array.from({ length: L.tk }, (_, i) => "k" + i);
    }
    function segOf(i) { return data.segments ? data.segments[i] : 0; }
    function rowOk(L, i) {
      if (st.pair === "all" || !selfAttn(L) || !data.segments) return true;
      return segOf(i) === Number(st.pair[0]);
    }
    function colOk(L, j) {
      if (st.pair === "all" || !selfAttn(L) || !data.segments) return true;
      return segOf(j) === Number(st.pair[2]);
    }
    // Only what means something: a layer with one head (e.g. attention pooling) has just
    // that map (its mean or max over heads would repeat it); rollout only where it was made.
    function aggOptions(L) {
      const out = [];
      if (L.heads.length === 1 && L.maps["h" + L.heads[0]]) {
        out.push(["h" + L.heads[0], L.role === "pool" ? "pooling weights" : "head " + L.heads[0] + " (the only head)"]);
      } else {
        if (st.view === "head" && L.heads.length) out.push(["heads", AGG_LABEL.heads]);
        for (const k of ["mean", "max"]) if (L.maps[k]) out.push([k, AGG_LABEL[k]]);
        if (st.view === "matrix") for (const h of L.heads) out.push(["h" + h, "head " + h]);
      }
      if (L.maps.rollout) out.push(["rollout", AGG_LABEL.rollout]);
      return out;
    }
    function fixAgg() {
      const L = layer(), opts = aggOptions(L).map((o) => o[0]);
      const h0 = data.initial ? data.initial.head : null;
      if (!st._initDone && h0 != null) { // a head asked for: shown alone
        if (st.view === "head" && opts.includes("heads")) { st.agg = "heads"; st.heads = new Set([h0]); }
        else if (opts.includes("h" + h0)) st.agg = "h" + h0;
      }
      st._initDone = true;
      if (!opts.includes(st.agg)) st.agg = opts.includes("mean") ? "mean" : opts[0];
      for (const h of [...st.heads]) if (!L.heads.includes(h)) st.heads.delete(h);
      if (!st.heads.size) L.heads.forEach((h) => st.heads.add(h));
    }

    // ---- toolbar ---------------------------------------------------------------
    const title = el("div", { class: "al-title" }, data.title || "");
    root.append(title);
    if (data.prediction) {
      const labels = Object.keys(data.prediction).sort((a, b) => data.prediction[b] - data.prediction[a]);
      const p = (k) => k + " " + data.prediction[k].toFixed(3);
      root.append(el("div", { class: "al-prediction" }, "prediction: " + p(labels[0]) +
        (labels.length > 1 ? " (" + labels.slice(1).map(p).join(", ") + ")" : "")));
    }
    for (const text of data.notes || []) root.append(el("div", { class: "al-warn" }, text));
    const bar = el("div", { class: "al-toolbar" });
    const note = el("div", { class: "al-note" });
    const body = el("div", { class: "al-body" });
    root.append(bar, note, body);

    function select(label, options, value, onchange, cls) {
      const wrap = el("label", {}, label + " ");
      const s = el("select", { class: cls });
      for (const [v, text] of options) {
        const o = el("option", { value: v }, text);
        if (String(v) === String(value)) o.selected = true;
        s.append(o);
      }
      s.addEventListener("change", () => onchange(s.value));
      wrap.append(s);
      return wrap;
    }
    function toolbar() {
      bar.textContent = "";
      const L = layer();
      if (data.layers.length > 1) {
        bar.append(select("layer", data.layers.map((x, i) => [i, x.name]), st.layer, (v) => {
          st.layer = Number(v); st.sel.clear(); st.heads.clear(); render();
        }, "al-layer"));
      }
      const opts = aggOptions(L);
      if (opts.length > 1) bar.append(select("show", opts, st.agg, (v) => { st.agg = v; render(); }, "al-agg"));
      else if (opts.length === 1) bar.append(el("span", { class: "al-only" }, opts[0][1]));
      if (st.view === "head" && st.agg === "heads" && L.heads.length > 1) {
        // click: this head alone; shift/ctrl/cmd-click: add or remove it; "all heads": every one
        const all = el("button", { class: "al-all" + (st.heads.size === L.heads.length ? " on" : ""),
          title: "show every head" }, "all heads");
        all.addEventListener("click", () => { L.heads.forEach((h) => st.heads.add(h)); render(); });
        bar.append(all);
        for (const h of L.heads) {
          const colour = PALETTE[h % PALETTE.length];
          const b = el("button", { class: "al-head" + (st.heads.has(h) ? " on" : ""), "data-head": h,
            style: "border-color:" + colour, title: "head " + h + ": click to see it alone, shift-click to add or remove it" }, String(h));
          b.addEventListener("click", (ev) => {
            if (ev.shiftKey || ev.ctrlKey || ev.metaKey) {
              if (!st.heads.has(h)) st.heads.add(h);
              else if (st.heads.size > 1) st.heads.delete(h);
            } else {
              st.heads = new Set([h]);
            }
            render();
          });
          bar.append(b);
        }
      }
      if (data.segments && selfAttn(L)) {
        bar.append(select("pair", [["all", "all"], ["0>1", "A → B"], ["1>0", "B → A"],
          ["0>0", "A → A"], ["1>1", "B → B"]], st.pair, (v) => { st.pair = v; render(); }, "al-pair"));
      }
      if (st.view !== "head") {
        bar.append(select("contrast", [[1, "linear"], [0.5, "sqrt"], [0.25, "strong"]], st.gamma,
          (v) => { st.gamma = Number(v); render(); }, "al-gamma"));
      }
      if (st.sel.size) {
        const c = el("button", { class: "al-clear" }, "clear selection (" + st.sel.size + ")");
        c.addEventListener("click", () => { st.sel.clear(); render(); });
        bar.append(c);
      }
      const t = el("button", { class: "al-theme", title: "switch light / dark" },
        root.dataset.theme === "dark" ? "light theme" : "dark theme");
      t.addEventListener("click", () => {
        root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
        render();
      });
      bar.append(t);
    }

    // ---- head view: two token columns joined by lines -----------------------------
    async function headView() {
      const L = layer(), qt = qTokens(L), kt = kTokens(L);
      const keys = st.agg === "heads" ? headKeys(L).filter((k) => st.heads.has(Number(k.slice(1)))) : [st.agg];
      const maps = await Promise.all(keys.map((k) => getMap(st.layer, k)));
      const rowH = 20, xl = 170, xr = 390, n = Math.max(qt.length, kt.length);
      const s = sv("svg", { class: "al-head-svg", width: 560, height: n * rowH + 8 });
      const lines = sv("g", { class: "al-lines" });
      const shade = sv("g", { class: "al-shades" });
      s.append(shade, lines);
      const yq = (i) => i * rowH + 14 + ((n - qt.length) * rowH) / 2;
      const yk = (j) => j * rowH + 14 + ((n - kt.length) * rowH) / 2;
      qt.forEach((tok, i) => {
        const t = sv("text", { x: xl - 6, y: yq(i), "text-anchor": "end", class: "al-q" + (st.sel.has(i) ? " sel" : ""), "data-i": i }, short(tok));
        t.append(sv("title", {}, tok));
        t.addEventListener("mouseenter", () => { if (!st.sel.size) { st.hover = i; drawLines(); } });
        t.addEventListener("mouseleave", () => { if (st.hover != null) { st.hover = null; drawLines(); } });
        t.addEventListener("click", () => {
          st.hover = null;
          if (st.sel.has(i)) st.sel.delete(i); else st.sel.add(i);
          render();
        });
        s.append(t);
      });
      const kNodes = kt.map((tok, j) => {
        const t = sv("text", { x: xr + 6, y: yk(j), class: "al-k", "data-j": j }, short(tok));
        t.append(sv("title", {}, tok));
        s.append(t);
        return t;
      });
      const thr = qt.length > 64 ? 0.03 : 0.01;
      function drawLines() {
        lines.textContent = "";
        shade.textContent = "";
        const rows = st.hover != null ? [st.hover] : st.sel.size ? [...st.sel] : qt.map((_, i) => i);
        maps.forEach((m, idx) => {
          const colour = st.agg === "heads" ? PALETTE[Number(keys[idx].slice(1)) % PALETTE.length] : "var(--accent)";
          // one pooled row spreads its mass over every token: scale it to its largest weight
          const scale = L.tq === 1 ? 1 / m.max : 1;
          for (const i of rows) {
            if (!rowOk(L, i)) continue;
            for (let j = 0; j < m.cols; j++) {
              const w = m.v[i * m.cols + j] * scale;
              if (w < thr || !colOk(L, j)) continue;
              lines.append(sv("line", { x1: xl, y1: yq(i) - 4, x2: xr, y2: yk(j) - 4, stroke: colour,
                "stroke-width": 2, "stroke-opacity": Math.min(1, w).toFixed(3), "data-head": keys[idx] }));
            }
          }
        });
        const chosen = st.hover != null ? [st.hover] : [...st.sel];
        if (chosen.length && maps.length) {
          const sum = new Float32Array(kt.length);
          for (const m of maps) for (const i of chosen) for (let j = 0; j < m.cols; j++) sum[j] += m.v[i * m.cols + j] / maps.length;
          const top = Math.max(...sum) || 1;
          kNodes.forEach((node, j) => {
            shade.append(sv("rect", { class: "al-shade", x: xr + 2, y: yk(j) - 13, width: 160, height: rowH - 3,
              "fill-opacity": (0.85 * sum[j] / top).toFixed(3) }));
            node.setAttribute("data-sum", sum[j].toFixed(5));
          });
          note.textContent = "attention summed over " + chosen.length + " selected token(s); top: " +
            [...sum.keys()].sort((a, b) => sum[b] - sum[a]).slice(0, 5).map((j) => kt[j] + " " + fmt(sum[j])).join(", ");
        } else {
          note.textContent = (st.agg === "heads" && L.heads.length > 1 ? "click a head to see it alone (shift-click adds); " : "") +
            "hover a token on the left to isolate it; click tokens to select and sum them";
        }
      }
      drawLines();
      body.append(s);
    }

    // ---- matrix panel (canvas + hover + row selection), used by matrix and model views ----
    async function matrixPanel(l, key, parent, maxSize) {
      const L = data.layers[l], m = await getMap(l, key), qt = qTokens(L), kt = kTokens(L);
      const rows = [];
      for (let i = 0; i < m.rows; i++) if (rowOk(L, i)) rows.push(i);
      const cols = [];
      for (let j = 0; j < m.cols; j++) if (colOk(L, j)) cols.push(j);
      let shown = m;
      if (cols.length !== m.cols) { // pair filter: keep only the chosen segment's keys
        const v = new Float32Array(m.rows * cols.length);
        for (let i = 0; i < m.rows; i++) cols.forEach((j, c) => { v[i * cols.length + c] = m.v[i * m.cols + j]; });
        let mx = 1e-12;
        for (let i = 0; i < v.length; i++) if (v[i] > mx) mx = v[i];
        shown = { rows: m.rows, cols: cols.length, v: v, max: mx };
      }
      const labelled = rows.length <= 80 && cols.length <= 80;
      const cell = Math.max(1, Math.min(28, Math.floor((maxSize || 720) / Math.max(rows.length, cols.length))));
      // more cells than pixels: the canvas keeps one pixel per cell and is scaled down
      const fit = Math.min(1, (maxSize || 720) / Math.max(rows.length, cols.length, 1));
      const W = Math.max(Math.round(cell * cols.length * fit), 1), H = Math.max(Math.round(cell * rows.length * fit), 1);
      const padL = labelled ? 110 : 0, padT = labelled ? 80 : 0;
      const wrap = el("div", { class: "al-matrix-wrap", style: "padding:" + padT + "px 0 0 " + padL + "px" });
      const canvas = el("canvas", { class: "al-matrix", "data-layer": l, "data-map": key });
      canvas.style.width = W + "px";
      canvas.style.height = H + "px";
      paint(canvas, shown, root.dataset.theme, st.gamma, rows);
      wrap.append(canvas);
      if (labelled) {
        const yl = el("div", { class: "al-ylabels", style: "left:0;top:" + padT + "px;width:" + (padL - 2) + "px;height:" + H + "px" });
        rows.forEach((i, r) => yl.append(el("div", { style: "top:" + (r + 0.5) * cell + "px" + (st.sel.has(i) ? ";font-weight:700" : "") }, short(qt[i]))));
        const xl = el("div", { class: "al-xlabels", style: "left:" + padL + "px;top:0;height:" + padT + "px;width:" + W + "px" });
        cols.forEach((j, c) => xl.append(el("div", { style: "left:" + (c + 0.5) * cell + "px" }, short(kt[j]))));
        wrap.append(yl, xl);
      }
      const tip = el("div", { class: "al-tip" });
      wrap.append(tip);
      function at(ev) {
        const r = canvas.getBoundingClientRect();
        const c = Math.floor(((ev.clientX - r.left) / r.width) * cols.length);
        const y = Math.floor(((ev.clientY - r.top) / r.height) * rows.length);
        return c >= 0 && y >= 0 && c < cols.length && y < rows.length ? [rows[y], cols[c], c] : null;
      }
      canvas.addEventListener("mousemove", (ev) => {
        const p = at(ev);
        if (!p) { tip.style.display = "none"; return; }
        tip.textContent = qt[p[0]] + " → " + kt[p[1]] + ": " + fmt(m.v[p[0] * m.cols + p[1]]);
        tip.style.display = "block";
        const r = canvas.getBoundingClientRect(), wr = wrap.getBoundingClientRect();
        tip.style.left = (ev.clientX - wr.left + 12) + "px";
        tip.style.top = (ev.clientY - wr.top + 12) + "px";
        void r;
      });
      canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      canvas.addEventListener("click", (ev) => {
        const p = at(ev);
        if (!p) return;
        if (!ev.shiftKey && !ev.ctrlKey && !ev.metaKey) {
          const only = st.sel.size === 1 && st.sel.has(p[0]);
          st.sel.clear();
          if (!only) st.sel.add(p[0]);
        } else if (st.sel.has(p[0])) st.sel.delete(p[0]);
        else st.sel.add(p[0]);
        render();
      });
      parent.append(wrap);
      if (st.sel.size) { // selected query rows: their attention summed over keys
        const sum = new Float32Array(shown.cols);
        for (const i of st.sel) for (let c = 0; c < shown.cols; c++) sum[c] += shown.v[i * shown.cols + c];
        const top = Math.max(...sum) || 1;
        const strip = el("canvas", { class: "al-strip" });
        strip.style.width = W + "px";
        strip.style.marginLeft = padL + "px";
        paint(strip, { rows: 1, cols: shown.cols, v: sum, max: top }, root.dataset.theme, st.gamma);
        parent.append(strip);
        note.textContent = "sum over " + st.sel.size + " selected row(s): " +
          [...sum.keys()].sort((a, b) => sum[b] - sum[a]).slice(0, 5).map((c) => kt[cols[c]] + " " + fmt(sum[c])).join(", ");
      }
      return canvas;
    }

    async function matrixView() {
      note.textContent = "hover for values; click a row to sum its attention (shift-click adds rows)";
      await matrixPanel(st.layer, st.agg, body, 720);
    }

    // ---- model view: every layer x head as a thumbnail; click to enlarge ----------
    async function modelView() {
      note.textContent = "click a thumbnail to enlarge it";
      if (st.detail) {
        const box = el("div", { class: "al-detail" });
        const close = el("button", { class: "al-close" }, "close");
        close.addEventListener("click", () => { st.detail = null; render(); });
        const L = data.layers[st.detail[0]];
        box.append(el("div", { class: "al-title" }, L.name + " · " + (st.detail[1][0] === "h" ? "head " + st.detail[1].slice(1) : st.detail[1])), close);
        body.append(box);
        await matrixPanel(st.detail[0], st.detail[1], box, 520);
      }
      const cols = Math.max(...data.layers.map((L) => (L.heads.length ? L.heads.length : 0) + (L.maps.mean ? 1 : 0)));
      const grid = el("div", { class: "al-grid", style: "grid-template-columns: max-content repeat(" + cols + ", 74px)" });
      grid.append(el("div"));
      const width = (L) => L.heads.length + (L.maps.mean ? 1 : 0);
      const first = data.layers.reduce((a, b) => (width(b) > width(a) ? b : a), data.layers[0]);
      for (const h of first.heads) grid.append(el("div", { class: "al-collabel" }, "head " + h));
      if (first.maps.mean) grid.append(el("div", { class: "al-collabel" }, "mean"));
      for (let c = first.heads.length + (first.maps.mean ? 1 : 0); c < cols; c++) grid.append(el("div"));
      for (let l = 0; l < data.layers.length; l++) {
        const L = data.layers[l];
        grid.append(el("div", { class: "al-rowlabel" }, L.name));
        const keys = headKeys(L).concat(L.maps.mean ? ["mean"] : []);
        for (const key of keys) {
          // a pooling layer (one query) stays a row instead of being stretched into a square
          const cv = el("canvas", { class: "al-thumb" + (L.tq === 1 ? " al-row" : ""), "data-layer": l, "data-map": key,
            title: L.name + " " + (key === "mean" ? "mean of heads" : "head " + key.slice(1)) });
          paint(cv, await getMap(l, key), root.dataset.theme, st.gamma);
          cv.addEventListener("click", () => { st.detail = [l, key]; render(); });
          grid.append(cv);
        }
        for (let c = keys.length; c < cols; c++) grid.append(el("div"));
      }
      body.append(grid);
    }

    let busy = Promise.resolve();
    function render() {
      busy = busy.then(async () => {
        fixAgg();
        toolbar();
        body.textContent = "";
        try {
          if (st.view === "model") await modelView();
          else if (st.view === "matrix") await matrixView();
          else await headView();
          root.dataset.ready = "1";
        } catch (err) {
          body.append(el("div", { class: "al-error" }, "could not draw the view: " + err.message));
          root.dataset.ready = "error";
        }
      });
      return busy;
    }
    root.dataset.ready = "0";
    await render();
    return st;
  };
})();
