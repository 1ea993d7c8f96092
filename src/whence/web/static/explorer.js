/* whence lineage explorer: the page's script (plain JavaScript, no libraries, nothing fetched but /api).
 *
 * Views, chosen by the address's hash:
 *   #/RUN/graph            the operation graph (drag to pan, wheel to zoom, click an operation)
 *   #/RUN/cells/NAME       a window over the cells of an object or source; click a cell for its lineage,
 *                          a row number for its source file lines
 *   #/RUN/results[/NAME]   stored results: attribution per test row, unlearning figures
 */
"use strict";

const state = {
  store: null,      // /api/store
  run: null,        // run name
  detail: null,     // /api/runs/RUN
  graph: null,      // /api/runs/RUN/graph
  graphView: null,  // {k, tx, ty} kept while the run stays the same
  showComposed: false,
  cells: null,      // the cells view's state
};

const SVG_NS = "http://www.w3.org/2000/svg";

// --------------------------------------------------------------------------------------------- helpers
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// replaceChildren / append, skipping null, undefined and false (left by conditional children)
function kids(list) { return list.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false); }
function fill(node, ...children) { node.replaceChildren(...kids(children)); return node; }
function add(node, ...children) { node.append(...kids(children)); return node; }

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "oninput" || k === "onchange" || k === "onkeydown") e[k] = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

async function api(path, params) {
  const q = params ? "?" + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined)) : "";
  const r = await fetch(path + q, {headers: {Accept: "application/json"}});
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    let msg = body && body.detail !== undefined ? body.detail : r.statusText;
    if (Array.isArray(msg)) msg = msg.map((d) => d.msg || JSON.stringify(d)).join("; ");
    throw new Error(`${r.status}: ${msg}`);
  }
  return body;
}

function showError(err) {
  const b = document.getElementById("error-banner");
  b.textContent = String(err && err.message ? err.message : err);
  b.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { b.hidden = true; }, 8000);
}

function enc(s) { return encodeURIComponent(s); }
function shapeText(shape) { return shape.length ? shape.join("×") : "scalar"; }
function fmtInt(n) { return Number(n).toLocaleString("en-US"); }
function prod(a) { return a.reduce((x, y) => x * y, 1); }
function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
function badge(comp) { return el("span", {class: "badge " + comp.toLowerCase()}, comp); }
function fmtScore(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e6) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

// arrays of any rank are shown as 2-D: the first axis by the others flattened
function viewDims(shape) {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [shape[0], 1];
  return [shape[0], prod(shape.slice(1))];
}
function toView(cell, shape) {
  if (shape.length === 0) return [0, 0];
  if (shape.length === 1) return [cell[0], 0];
  let c = 0;
  for (let i = 1; i < shape.length; i++) c = c * shape[i] + cell[i];
  return [cell[0], c];
}
function fromView(r, c, shape) {
  if (shape.length === 0) return [];
  if (shape.length === 1) return [r];
  const out = [];
  for (let i = shape.length - 1; i >= 1; i--) { out.unshift(c % shape[i]); c = Math.floor(c / shape[i]); }
  return [r, ...out];
}
function colLabel(c, shape, columns) {
  if (columns && columns.length === viewDims(shape)[1]) return columns[c];
  if (shape.length <= 2) return String(c);
  return fromView(0, c, shape).slice(1).join(",");
}

// --------------------------------------------------------------------------------------------- routing
function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const runs = state.store.runs;
  if (!runs.length) {
    fill(document.getElementById("main"), el("p", {class: "pad"}, "This store holds no runs."));
    return;
  }
  const run = runs.includes(parts[0]) ? parts[0] : runs[0];
  try {
    if (run !== state.run) await loadRun(run);
    const view = parts[1] || "graph";
    markNav(view, parts[2]);
    if (view === "cells" && parts[2]) await showCells(parts[2], parts[3]);
    else if (view === "results") await showResults(parts[2]);
    else await showGraph(parts[2] !== undefined ? Number(parts[2]) : null);
  } catch (err) {
    showError(err);
  }
}

function markNav(view, name) {
  for (const a of document.querySelectorAll("#sidebar a")) a.classList.remove("active");
  if (view === "cells") {
    const a = document.querySelector(`#sidebar a[data-name="${CSS.escape(name || "")}"]`);
    if (a) a.classList.add("active");
  } else if (view === "results") document.getElementById("nav-results").classList.add("active");
  else document.getElementById("nav-graph").classList.add("active");
}

async function loadRun(run) {
  state.run = run;
  state.detail = await api(`/api/runs/${enc(run)}`);
  state.graph = null;
  state.graphView = null;
  document.getElementById("run-select").value = run;
  document.getElementById("nav-graph").href = `#/${enc(run)}/graph`;
  document.getElementById("nav-results").href = `#/${enc(run)}/results`;
  const nres = state.detail.results.length;
  document.getElementById("results-count").textContent = nres ? String(nres) : "";
  const objs = document.getElementById("object-list");
  fill(objs, ...state.detail.objects.map((o) => el("li", null,
    el("a", {href: `#/${enc(run)}/cells/${enc(o.name)}`, "data-name": o.name, class: "nav-link obj-link"},
      el("span", {class: "name"}, o.name), el("span", {class: "meta"}, `${o.kind} ${shapeText(o.shape)}`),
      o.completeness === "PARTIAL" ? el("span", {class: "badge partial small"}, "PARTIAL") : null))));
  const srcs = document.getElementById("source-list");
  fill(srcs, ...state.detail.sources.map((s) => el("li", null,
    el("a", {href: `#/${enc(run)}/cells/${enc(s.name)}`, "data-name": s.name, class: "nav-link src-link",
      title: s.path || "(memory)"},
      el("span", {class: "name"}, s.name), el("span", {class: "meta"}, `${s.kind} ${shapeText(s.shape)}`)))));
}

// --------------------------------------------------------------------------------------------- graph view
async function showGraph(selectId) {
  if (!state.graph) state.graph = await api(`/api/runs/${enc(state.run)}/graph`);
  if (selectId !== null && !Number.isNaN(selectId)) state.graphView = null;  // an address naming an operation: centre it
  const main = document.getElementById("main");
  const wrap = el("div", {class: "graph-canvas", id: "graph-canvas"});
  const detail = el("aside", {class: "panel op-detail", id: "op-detail"},
    el("p", {class: "muted"}, "Click an operation to see its inputs, outputs, map and completeness."));
  const composedBox = el("input", {type: "checkbox", id: "show-composed"});
  composedBox.checked = state.showComposed;
  composedBox.onchange = () => { state.showComposed = composedBox.checked; state.graphView = null; showGraph(selectId); };
  const g = state.graph;
  const nops = g.nodes.filter((n) => !n.source).length;
  const npartial = g.nodes.filter((n) => n.completeness === "PARTIAL").length;
  const toolbar = el("div", {class: "toolbar"},
    el("strong", null, `Run ${state.run}`),
    el("span", {class: "muted"}, `${nops} operations, ${g.nodes.length - nops} sources` + (npartial ? `, ${npartial} PARTIAL` : "")),
    el("span", {class: "spacer"}),
    el("label", {class: "check", title: "table operations also keep their lineage composed straight to the sources"},
      composedBox, " composed edges to sources"),
    el("button", {type: "button", id: "zoom-out", title: "zoom out"}, "−"),
    el("button", {type: "button", id: "zoom-in", title: "zoom in"}, "+"),
    el("button", {type: "button", id: "zoom-fit", title: "fit the graph"}, "Fit"));
  const legend = el("div", {class: "legend"},
    el("span", {class: "key source"}, "source"), el("span", {class: "key op"}, "operation"),
    el("span", {class: "key object"}, "saved object"), el("span", {class: "key partial"}, "PARTIAL"),
    el("span", {class: "key control"}, "control input"));
  fill(main, el("div", {class: "graph-view"},
    el("div", {class: "graph-left"}, toolbar, wrap, legend), detail));
  drawGraph(wrap, g, selectId);
  if (selectId !== null && !Number.isNaN(selectId)) await selectOp(selectId, false);
}

function graphLayout(g, showComposed) {
  // the edges drawn: the pipeline's (composed ones only where asked, or where a node has no other input)
  const byChild = new Map();
  for (const e of g.edges) {
    if (!byChild.has(e.child)) byChild.set(e.child, []);
    byChild.get(e.child).push(e);
  }
  const links = new Map();  // "parent>child" -> {parent, child, control, composed}
  for (const n of g.nodes) {
    const es = byChild.get(n.id) || [];
    const plain = es.filter((e) => !e.composed);
    const use = showComposed || !plain.length ? es : plain;
    for (const e of use) {
      const key = `${e.parent}>${e.child}`;
      const prev = links.get(key);
      if (prev) { prev.control = prev.control && e.control; prev.composed = prev.composed && e.composed; }
      else links.set(key, {parent: e.parent, child: e.child, control: e.control, composed: e.composed});
    }
  }
  const depth = new Map();
  const parentsOf = new Map(g.nodes.map((n) => [n.id, []]));
  for (const l of links.values()) parentsOf.get(l.child).push(l.parent);
  for (const n of g.nodes) {  // nodes come parents first
    const ps = parentsOf.get(n.id);
    depth.set(n.id, ps.length ? 1 + Math.max(...ps.map((p) => depth.get(p))) : 0);
  }
  // a link spanning several rows passes through one waypoint per row between, ordered like the nodes
  const up = new Map(), down = new Map(), layers = [];
  const put = (key, d) => { (layers[d] = layers[d] || []).push(key); up.set(key, []); down.set(key, []); };
  for (const n of g.nodes) put(`n${n.id}`, depth.get(n.id));
  const route = new Map();
  for (const [k, l] of links) {
    const d0 = depth.get(l.parent), d1 = depth.get(l.child);
    let prev = `n${l.parent}`;
    const path = [prev];
    for (let d = d0 + 1; d < d1; d++) {
      const w = `w${k}@${d}`;
      put(w, d);
      down.get(prev).push(w); up.get(w).push(prev);
      path.push(w);
      prev = w;
    }
    down.get(prev).push(`n${l.child}`); up.get(`n${l.child}`).push(prev);
    path.push(`n${l.child}`);
    route.set(k, path);
  }
  const pos = new Map();
  layers.forEach((keys) => keys.forEach((key, i) => pos.set(key, i)));
  const sweep = (list, nbrs) => {
    for (const keys of list) {
      const bary = new Map(keys.map((key) => {
        const ns = nbrs.get(key);
        return [key, ns.length ? ns.reduce((s, x) => s + pos.get(x), 0) / ns.length : pos.get(key)];
      }));
      keys.sort((a, b) => bary.get(a) - bary.get(b));
      keys.forEach((key, i) => pos.set(key, i));
    }
  };
  for (let it = 0; it < 6; it++) { sweep(layers.slice(1), up); sweep(layers.slice(0, -1).reverse(), down); }
  // top to bottom: one row per depth, each row centred; waypoints take little room
  const W = 172, H = 46, GX = 26, GY = 42, WP = 16;
  const widthOf = (key) => (key[0] === "n" ? W : WP);
  const rowWidth = (keys) => keys.reduce((s, k) => s + widthOf(k) + GX, -GX);
  const widest = Math.max(...layers.map(rowWidth));
  const xy = new Map();  // key -> [left, top] (nodes) or [centre x, top] (waypoints)
  layers.forEach((keys, d) => {
    let x = 20 + (widest - rowWidth(keys)) / 2;
    for (const key of keys) {
      xy.set(key, key[0] === "n" ? [x, 20 + d * (H + GY)] : [x + WP / 2, 20 + d * (H + GY)]);
      x += widthOf(key) + GX;
    }
  });
  const nodeXY = new Map(g.nodes.map((n) => [n.id, xy.get(`n${n.id}`)]));
  const paths = new Map();
  for (const [k, keys] of route) {
    // points: bottom centre of the parent, the waypoints' column (top and bottom of their row), top of the child
    const pts = [];
    keys.forEach((key, i) => {
      const [x, y] = xy.get(key);
      if (i === 0) pts.push([x + W / 2, y + H]);
      else if (i === keys.length - 1) pts.push([x + W / 2, y - 2]);
      else pts.push([x, y], [x, y + H]);
    });
    let d = `M${pts[0][0]},${pts[0][1]}`;
    for (let i = 1; i < pts.length; i++) {
      const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
      if (x0 === x1) d += ` L${x1},${y1}`;
      else { const my = (y0 + y1) / 2; d += ` C${x0},${my} ${x1},${my} ${x1},${y1}`; }
    }
    paths.set(k, d);
  }
  return {W, H, xy: nodeXY, links: [...links.entries()].map(([k, l]) => ({...l, d: paths.get(k)})),
    width: 40 + widest, height: 40 + layers.length * (H + GY) - GY};
}

function drawGraph(wrap, g, selectId) {
  const L = graphLayout(g, state.showComposed);
  const root = svg("svg", {id: "graph-svg", role: "img", "aria-label": "operation graph"});
  const defs = svg("defs", null,
    svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse"},
      svg("path", {d: "M0,0 L10,5 L0,10 z", fill: "#94a3b8"})));
  const vp = svg("g", {id: "graph-viewport"});
  const edgeLayer = svg("g", {class: "edges"});
  const nodeLayer = svg("g", {class: "nodes"});
  for (const l of L.links) {
    add(edgeLayer, svg("path", {d: l.d,
      class: "edge" + (l.control ? " control" : "") + (l.composed ? " composed" : ""),
      "data-parent": l.parent, "data-child": l.child, "marker-end": "url(#arrow)"}));
  }
  for (const n of g.nodes) {
    const [x, y] = L.xy.get(n.id);
    const cls = ["node", n.source ? "source" : "op"];
    if (n.completeness === "PARTIAL") cls.push("partial");
    if (n.objects.length) cls.push("object");
    if (n.internal) cls.push("internal");
    const label = n.label.length > 22 ? n.label.slice(0, 21) + "…" : n.label;
    const sub = shapeText(n.shape) + (n.map_kind ? ` · ${n.map_kind}` : "");
    const title = `${n.label} (node ${n.id})\n${shapeText(n.shape)}` + (n.map_kind ? `, ${n.map_kind} map` : "") +
      (n.reason ? `\nPARTIAL: ${n.reason}` : "") + (n.objects.length ? `\nsaved as ${n.objects.join(", ")}` : "");
    const grp = svg("g", {class: cls.join(" "), "data-node": n.id, "data-op": n.op, transform: `translate(${x},${y})`, tabindex: 0},
      svg("title", null, title),
      svg("rect", {width: L.W, height: L.H, rx: 7}),
      svg("text", {x: 10, y: 19, class: "label"}, label),
      svg("text", {x: 10, y: 35, class: "sub"}, sub));
    if (n.objects.length) {
      const tag = n.objects.join(", ");
      const tw = Math.min(L.W - 8, 12 + 7 * tag.length);
      add(grp, svg("rect", {x: L.W - tw - 4, y: -9, width: tw, height: 17, rx: 8, class: "obj-tag"}),
        svg("text", {x: L.W - tw / 2 - 4, y: 4, class: "obj-tag-text", "text-anchor": "middle"}, tag.length > 20 ? tag.slice(0, 19) + "…" : tag));
    }
    grp.addEventListener("click", (ev) => { ev.stopPropagation(); selectOp(n.id, true); });
    grp.addEventListener("keydown", (ev) => { if (ev.key === "Enter") selectOp(n.id, true); });
    add(nodeLayer, grp);
  }
  add(vp, edgeLayer, nodeLayer);
  add(root, defs, vp);
  fill(wrap, root);
  const focus = selectId !== null && !Number.isNaN(selectId) && L.xy.has(selectId) ? L.xy.get(selectId) : null;
  enablePanZoom(root, vp, L, focus ? [focus[0] + L.W / 2, focus[1] + L.H / 2] : null);
  if (focus) markSelected(selectId);
}

function enablePanZoom(root, vp, L, focus) {
  const view = state.graphView || {k: 1, tx: 0, ty: 0};
  const apply = () => { vp.setAttribute("transform", `translate(${view.tx},${view.ty}) scale(${view.k})`); state.graphView = view; };
  const fit = (whole) => {
    // the whole graph, or (at first) a readable scale: the focused node centred, else the sources on top
    const w = root.clientWidth || 800, h = root.clientHeight || 500;
    const all = Math.min(w / L.width, h / L.height);
    const k = whole ? clamp(all, 0.08, 1.3) : clamp(Math.max(all, Math.min(1, w / L.width)), 0.7, 1.15);
    view.k = k;
    view.tx = L.width * k <= w ? (w - L.width * k) / 2 : (focus ? clamp(w / 2 - focus[0] * k, w - L.width * k - 10, 10) : 10);
    view.ty = L.height * k <= h ? (h - L.height * k) / 2 : (focus ? clamp(h / 2 - focus[1] * k, h - L.height * k - 10, 10) : 10);
    apply();
  };
  const zoomAt = (factor, cx, cy) => {
    const k = clamp(view.k * factor, 0.1, 4);
    view.tx = cx - (cx - view.tx) * (k / view.k);
    view.ty = cy - (cy - view.ty) * (k / view.k);
    view.k = k;
    apply();
  };
  if (state.graphView) apply(); else requestAnimationFrame(() => fit(false));
  root.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = root.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, {passive: false});
  let drag = null;
  root.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest(".node")) return;
    drag = {x: ev.clientX, y: ev.clientY, tx: view.tx, ty: view.ty};
    root.setPointerCapture(ev.pointerId);
    root.classList.add("dragging");
  });
  root.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    view.tx = drag.tx + ev.clientX - drag.x;
    view.ty = drag.ty + ev.clientY - drag.y;
    apply();
  });
  const end = () => { drag = null; root.classList.remove("dragging"); };
  root.addEventListener("pointerup", end);
  root.addEventListener("pointercancel", end);
  const centre = () => [root.clientWidth / 2, root.clientHeight / 2];
  document.getElementById("zoom-in").onclick = () => zoomAt(1.25, ...centre());
  document.getElementById("zoom-out").onclick = () => zoomAt(0.8, ...centre());
  document.getElementById("zoom-fit").onclick = () => fit(true);
}

function markSelected(id) {
  const root = document.getElementById("graph-svg");
  if (!root) return;
  root.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  root.querySelectorAll(".edge.in, .edge.out").forEach((e) => e.classList.remove("in", "out"));
  const n = root.querySelector(`.node[data-node="${id}"]`);
  if (n) n.classList.add("selected");
  root.querySelectorAll(`.edge[data-child="${id}"]`).forEach((e) => e.classList.add("in"));
  root.querySelectorAll(`.edge[data-parent="${id}"]`).forEach((e) => e.classList.add("out"));
}

async function selectOp(id, updateHash) {
  markSelected(id);
  if (updateHash) history.replaceState(null, "", `#/${enc(state.run)}/graph/${id}`);
  const d = await api(`/api/runs/${enc(state.run)}/ops/${id}`).catch((e) => { showError(e); return null; });
  if (!d) return;
  const n = d.node;
  const link = (o) => el("li", null,
    el("a", {href: "#", class: "op-ref", "data-node": o.node, onclick: (ev) => { ev.preventDefault(); selectOp(o.node, true); }},
      o.label),
    el("span", {class: "muted"}, ` ${shapeText(o.shape)} · input ${o.position}`),
    o.control ? el("span", {class: "badge control small"}, "control") : null,
    o.composed ? el("span", {class: "badge composed small", title: "the operation's lineage, composed to the source"}, "composed") : null);
  const rows = [
    ["operation", n.source ? `source ${n.source}` : n.op],
    ["node", String(n.id)],
    ["shape", shapeText(n.shape)],
    ["map kind", n.map_kind || (n.source ? "(source)" : "–")],
    ["lineage held", `${fmtInt(d.lineage_nbytes)} bytes`],
  ];
  if (n.detail) rows.splice(1, 0, ["detail", n.detail]);
  const box = el("div", {class: "op-detail-body", "data-node": n.id},
    el("h2", {class: "op-title"}, n.label),
    el("div", {class: "badges"}, badge(n.completeness), el("span", {class: "muted"}, " this step · upstream "),
      badge(d.upstream_completeness)),
    n.reason ? el("p", {class: "reason"}, el("strong", null, "PARTIAL: "), n.reason) : null,
    el("table", {class: "kv"}, rows.map(([k, v]) => el("tr", null, el("th", null, k), el("td", null, v)))),
    n.objects.length ? el("p", null, "Saved as ", n.objects.map((o, i) => [i ? ", " : "",
      el("a", {href: `#/${enc(state.run)}/cells/${enc(o)}`, class: "obj-ref"}, o)])) : null,
    n.source ? el("p", null, el("a", {href: `#/${enc(state.run)}/cells/${enc(n.source)}`}, "Open the source's cells")) : null,
    el("h3", null, `Inputs (${d.inputs.length})`),
    d.inputs.length ? el("ul", {class: "links inputs"}, d.inputs.map(link)) : el("p", {class: "muted"}, "none (a source)"),
    el("h3", null, `Outputs (${d.outputs.length})`),
    d.outputs.length ? el("ul", {class: "links outputs"}, d.outputs.map(link)) : el("p", {class: "muted"}, "none"),
    d.upstream_reasons.length ? [el("h3", null, "PARTIAL upstream"),
      el("ul", {class: "reasons"}, d.upstream_reasons.map((r) => el("li", null, r)))] : null,
    d.map ? el("details", null, el("summary", null, "Map record"), el("pre", null, JSON.stringify(d.map, null, 1))) : null);
  fill(document.getElementById("op-detail"), box);
}

// --------------------------------------------------------------------------------------------- cells view
function findInfo(name) {
  const o = state.detail.objects.find((x) => x.name === name);
  if (o) return {...o, isSource: false};
  const s = state.detail.sources.find((x) => x.name === name);
  if (s) return {name: s.name, kind: "source", shape: s.shape, columns: s.columns, completeness: "FULL",
    sources: [s.name], isSource: true, path: s.path, n_rows: s.n_rows};
  return null;
}

async function showCells(name, cellText) {
  const info = findInfo(name);
  if (!info) throw new Error(`404: run ${state.run} has no object or source named ${name}`);
  const [nr, nc] = viewDims(info.shape);
  state.cells = {name, info, r0: 0, c0: 0, rows: Math.min(nr, 22), cols: Math.min(nc, 12), selected: null,
    fwdCells: null, fwdFrom: null, traceRow: null};
  const main = document.getElementById("main");
  const head = el("div", {class: "obj-head"},
    el("h2", null, name),
    el("span", {class: "pill"}, `${info.kind} ${shapeText(info.shape)}`),
    badge(info.completeness),
    el("span", {class: "muted"}, info.isSource ? (info.path ? `read from ${info.path}` : "a source") : `from ${info.sources.join(", ")}`));
  const grid = el("div", {class: "grid-holder", id: "main-grid-holder"});
  const pager = el("div", {class: "pager", id: "main-pager"});
  const left = el("div", {class: "cells-left"},
    el("div", {class: "panel"}, pager, grid,
      el("p", {class: "hint"}, "The store keeps lineage, not values: each square is a cell position. Click a cell for its lineage; click a row number for the source file lines of the row.")));
  const tabs = el("div", {class: "tabs", role: "tablist"},
    el("a", {href: "#", class: "tab active", id: "tab-cell", role: "tab", onclick: (ev) => { ev.preventDefault(); showTab("cell"); }}, "Cell lineage"),
    el("a", {href: "#", class: "tab", id: "tab-row", role: "tab", onclick: (ev) => { ev.preventDefault(); showTab("row"); }}, "Row → file lines"));
  const right = el("div", {class: "cells-right"}, tabs,
    el("div", {id: "cell-tab"},
      el("section", {class: "panel", id: "backward-panel"}, el("h3", null, "Backward lineage"),
        el("p", {class: "muted"}, "Click a cell to see the source cells it was computed or copied from.")),
      el("section", {class: "panel", id: "forward-panel"}, el("h3", null, "Forward lineage"),
        el("p", {class: "muted"}, "The cells of saved objects downstream of the clicked cell. Click a highlighted source cell to push it forward."))),
    el("div", {id: "row-tab", hidden: true},
      el("section", {class: "panel", id: "trace-panel"}, el("h3", null, "Source file lines"),
        el("p", {class: "muted"}, "Click a row number to list the source rows it derives from: table, file, line and columns."))));
  fill(main, el("div", {class: "cells-view"}, head, el("div", {class: "cells-cols"}, left, right)));
  const cell = cellText !== undefined ? cellText.split(",").filter((x) => x !== "").map(Number) : null;
  if (cell && cell.length === info.shape.length && cell.every((v, i) => Number.isInteger(v) && v >= 0 && v < info.shape[i])) {
    const [vr, vc] = toView(cell, info.shape);
    const st = state.cells;
    st.r0 = clamp(vr - Math.floor(st.rows / 2), 0, Math.max(0, nr - st.rows));
    st.c0 = clamp(vc - Math.floor(st.cols / 2), 0, Math.max(0, nc - st.cols));
    await clickMainCell(cell);
  } else {
    if (cell) showError(`cell [${cellText}] is not a cell of ${name} (shape ${shapeText(info.shape)})`);
    renderMainGrid();
  }
}

function showTab(which) {
  document.getElementById("cell-tab").hidden = which !== "cell";
  document.getElementById("row-tab").hidden = which !== "row";
  document.getElementById("tab-cell").classList.toggle("active", which === "cell");
  document.getElementById("tab-row").classList.toggle("active", which === "row");
}

function renderMainGrid() {
  const s = state.cells;
  const [nr, nc] = viewDims(s.info.shape);
  const pager = document.getElementById("main-pager");
  const mk = (label, title, fn, disabled) => el("button", {type: "button", title, onclick: fn, disabled}, label);
  const moveR = (d) => { s.r0 = clamp(s.r0 + d, 0, Math.max(0, nr - s.rows)); renderMainGrid(); };
  const moveC = (d) => { s.c0 = clamp(s.c0 + d, 0, Math.max(0, nc - s.cols)); renderMainGrid(); };
  const goto = el("input", {type: "number", min: 0, max: nr - 1, placeholder: "row", class: "goto", "aria-label": "go to row"});
  goto.onkeydown = (ev) => {
    if (ev.key !== "Enter") return;
    const r = Number(goto.value);
    if (Number.isFinite(r)) { s.r0 = clamp(r, 0, Math.max(0, nr - s.rows)); renderMainGrid(); }
  };
  fill(pager, 
    el("span", null, `rows ${fmtInt(s.r0)}–${fmtInt(Math.min(nr, s.r0 + s.rows) - 1)} of ${fmtInt(nr)}`),
    mk("◀", "previous rows", () => moveR(-s.rows), s.r0 === 0), mk("▶", "next rows", () => moveR(s.rows), s.r0 + s.rows >= nr),
    goto,
    el("span", {class: "sep"}),
    el("span", null, `columns ${fmtInt(s.c0)}–${fmtInt(Math.min(nc, s.c0 + s.cols) - 1)} of ${fmtInt(nc)}`),
    mk("◀", "previous columns", () => moveC(-s.cols), s.c0 === 0), mk("▶", "next columns", () => moveC(s.cols), s.c0 + s.cols >= nc));
  const fwd = s.fwdCells ? new Set(s.fwdCells.map((c) => c.join(","))) : null;
  const table = cellGrid({
    id: "main-grid", shape: s.info.shape, columns: s.info.columns, r0: s.r0, c0: s.c0, rows: s.rows, cols: s.cols,
    classOf: (key) => (key === s.selected ? "selected" : "") + (fwd && fwd.has(key) ? " fwd" : ""),
    onCell: (cell) => clickMainCell(cell),
    onRow: s.info.shape.length ? (r) => traceRow(r) : null,
    rowClass: (r) => (r === s.traceRow ? "traced" : ""),
  });
  fill(document.getElementById("main-grid-holder"), table);
}

function cellGrid(o) {
  const [nr, nc] = viewDims(o.shape);
  const named = o.columns && o.columns.length === nc;
  const t = el("table", {class: "grid" + (named ? " named" : ""), id: o.id || null});
  const hr = el("tr", null, el("th", {class: "corner"}));
  for (let c = o.c0; c < Math.min(nc, o.c0 + o.cols); c++) {
    const lab = colLabel(c, o.shape, o.columns);
    add(hr, el("th", {class: "col", title: lab}, el("span", null, lab.length > 13 ? lab.slice(0, 12) + "…" : lab)));
  }
  add(t, el("thead", null, hr));
  const body = el("tbody");
  const rowList = o.rowList || Array.from({length: Math.max(0, Math.min(nr, o.r0 + o.rows) - o.r0)}, (_, i) => o.r0 + i);
  let prev = null;
  for (const r of rowList) {
    if (prev !== null && r > prev + 1) {
      add(body, el("tr", {class: "gap"}, el("th", {class: "row gap", title: `${fmtInt(r - prev - 1)} rows without lineage`}, "⋮"),
        el("td", {class: "gap", colspan: Math.min(nc, o.c0 + o.cols) - o.c0})));
    }
    prev = r;
    const rh = el("th", {class: "row" + (o.onRow ? " clickable" : "") + (o.rowClass ? " " + o.rowClass(r) : ""),
      "data-row": r, title: o.onRow ? `source file lines of row ${r}` : null}, o.shape.length ? String(r) : "");
    if (o.onRow) rh.onclick = () => o.onRow(r);
    const tr = el("tr", null, rh);
    for (let c = o.c0; c < Math.min(nc, o.c0 + o.cols); c++) {
      const cell = fromView(r, c, o.shape);
      const key = cell.join(",");
      const td = el("td", {"data-cell": key, class: o.classOf(key).trim() || null,
        title: `[${key}]` + (o.columns && o.shape.length === 2 ? ` ${o.columns[c]}` : "")});
      if (o.onCell) td.onclick = () => o.onCell(cell);
      add(tr, td);
    }
    add(body, tr);
  }
  add(t, body);
  return t;
}

async function clickMainCell(cell) {
  const s = state.cells;
  s.selected = cell.join(",");
  s.fwdCells = null;
  renderMainGrid();
  showTab("cell");
  history.replaceState(null, "", `#/${enc(state.run)}/cells/${enc(s.name)}/${s.selected}`);
  const base = `/api/runs/${enc(state.run)}/objects/${enc(s.name)}`;
  const bp = document.getElementById("backward-panel"), fp = document.getElementById("forward-panel");
  bp.classList.add("loading"); fp.classList.add("loading");
  try {
    const [bw, fw] = await Promise.all([api(base + "/backward", {cell: s.selected}), api(base + "/forward", {cell: s.selected})]);
    if (state.cells !== s || s.selected !== cell.join(",")) return;
    renderBackward(bw);
    renderForward(fw, `${s.name}[${s.selected}]`);
  } catch (err) { showError(err); } finally { bp.classList.remove("loading"); fp.classList.remove("loading"); }
}

function renderBackward(bw) {
  const panel = document.getElementById("backward-panel");
  const total = bw.sources.reduce((a, x) => a + x.count, 0);
  fill(panel, 
    el("h3", null, `Backward lineage of ${bw.object}[${bw.cell.join(",")}]`),
    el("p", {class: "summary", id: "backward-summary"}, `${fmtInt(total)} source cell${total === 1 ? "" : "s"} in ${bw.sources.filter((x) => x.count).length} source(s) `,
      badge(bw.complete ? "FULL" : "PARTIAL")),
    bw.reasons.length ? el("ul", {class: "reasons"}, bw.reasons.map((r) => el("li", null, r))) : null,
    el("div", {class: "cards"}, bw.sources.map((cs) => cellSetCard(cs, {
      role: "backward",
      refetch: (win) => api(`/api/runs/${enc(state.run)}/objects/${enc(bw.object)}/backward`,
        {cell: bw.cell.join(","), source: cs.name, window: win, limit: 5000}).then((a) => a.sources.find((x) => x.name === cs.name)),
      onCell: (cell) => forwardFromSource(cs.name, cell),
    }))));
}

function renderForward(fw, fromLabel) {
  const panel = document.getElementById("forward-panel");
  const s = state.cells;
  const mine = fw.targets.find((t) => t.name === s.name);
  if (mine) { s.fwdCells = mine.cells; s.fwdFrom = fromLabel; renderMainGrid(); }
  const others = fw.targets.filter((t) => t.name !== s.name);
  fill(panel, 
    el("h3", null, `Forward lineage of ${fromLabel}`),
    mine ? el("p", {class: "summary", id: "forward-summary"}, `${fmtInt(mine.count)} cell${mine.count === 1 ? "" : "s"} of ${s.name} (highlighted in the grid)`) : null,
    others.length ? el("div", {class: "cards"}, others.map((cs) => cellSetCard(cs, {
      role: "forward",
      refetch: (win) => api(`/api/runs/${enc(state.run)}/objects/${enc(fw.start)}/forward`,
        {cell: fw.cell.join(","), target: cs.name, window: win, limit: 5000}).then((a) => a.targets.find((x) => x.name === cs.name)),
      onCell: null,
    }))) : (mine ? null : el("p", {class: "muted"}, "No saved object lies downstream of this cell.")));
}

async function forwardFromSource(source, cell) {
  const s = state.cells;
  try {
    const fw = await api(`/api/runs/${enc(state.run)}/objects/${enc(source)}/forward`, {cell: cell.join(",")});
    if (state.cells !== s) return;
    document.querySelectorAll("#backward-panel td.picked").forEach((td) => td.classList.remove("picked"));
    const td = document.querySelector(`#backward-panel .card[data-name="${CSS.escape(source)}"] td[data-cell="${cell.join(",")}"]`);
    if (td) td.classList.add("picked");
    renderForward(fw, `${source}[${cell.join(",")}]`);
  } catch (err) { showError(err); }
}

function cellSetCard(cs, opts) {
  // two ways to show a set: the rows holding its cells (when they are few, however far apart), or a window
  // of contiguous rows moved with the arrows or by clicking the overview
  const [nr, nc] = viewDims(cs.shape);
  const rows = Math.min(nr, 12), cols = Math.min(nc, 9);
  const card = el("div", {class: "card " + opts.role + (cs.count ? "" : " empty"), "data-name": cs.name, "data-count": cs.count});
  let cells = cs.cells, truncated = cs.truncated;
  const lineageRows = [...new Set(cs.cells.map((c) => toView(c, cs.shape)[0]))].sort((a, b) => a - b);
  let mode = !truncated && lineageRows.length <= 12 && lineageRows.length > 0 ? "rows" : "window";
  let r0 = 0, c0 = 0;
  if (cs.cells.length) {
    const vcs = cs.cells.map((c) => toView(c, cs.shape)[1]);
    const cmin = Math.min(...vcs), cmax = Math.max(...vcs);
    r0 = clamp(toView(cs.cells[0], cs.shape)[0] - 2, 0, Math.max(0, nr - rows));
    c0 = cmax - cmin < cols ? clamp(cmin - Math.floor((cols - (cmax - cmin + 1)) / 2), 0, Math.max(0, nc - cols))
      : clamp(cmin, 0, Math.max(0, nc - cols));
  }
  const bboxText = () => {
    if (!cs.bbox) return "no cells";
    const b = cs.bbox;
    const parts = [b[0][0] === b[0][1] ? `row ${fmtInt(b[0][0])}` : `${fmtInt(truncated ? 0 : lineageRows.length)}${truncated ? "+" : ""} rows in ${fmtInt(b[0][0])}–${fmtInt(b[0][1])}`];
    if (truncated) parts[0] = `rows ${fmtInt(b[0][0])}–${fmtInt(b[0][1])}`;
    if (cs.shape.length >= 2) {
      const colsUsed = [...new Set(cs.cells.map((c) => colLabel(toView(c, cs.shape)[1], cs.shape, cs.columns)))];
      parts.push(colsUsed.length <= 4 && !truncated ? `column${colsUsed.length === 1 ? "" : "s"} ${colsUsed.join(", ")}` :
        (b[1][0] === b[1][1] ? `column ${b[1][0]}` : `columns ${b[1][0]}–${b[1][1]}`) + ` (${colsUsed.length}${truncated ? "+" : ""} distinct)`);
    }
    return parts.join(" · ");
  };
  const overview = el("canvas", {class: "overview", width: 132, height: 88, title: "where the cells are, over the whole array (click to move the window there)"});
  const holder = el("div", {class: "grid-holder small"});
  const status = el("p", {class: "window-note"});
  const modeBtn = el("button", {type: "button", class: "mode", title: "switch between the rows holding cells and a window of contiguous rows"});
  const draw = () => {
    const set = new Set(cells.map((c) => c.join(",")));
    card.dataset.mode = mode;
    fill(holder, cellGrid({shape: cs.shape, columns: cs.columns, r0, c0, rows, cols, rowList: mode === "rows" ? lineageRows : null,
      classOf: (key) => (set.has(key) ? "hl" : ""), onCell: opts.onCell}));
    const inRows = (vr) => (mode === "rows" ? true : vr >= r0 && vr < r0 + rows);
    const inWin = cells.filter((c) => { const [vr, vc] = toView(c, cs.shape); return inRows(vr) && vc >= c0 && vc < c0 + cols; }).length;
    const colsText = nc > cols ? `, columns ${c0}–${Math.min(nc, c0 + cols) - 1}` : "";
    status.textContent = mode === "rows" ? `${fmtInt(inWin)} of ${fmtInt(cs.count)} shown: the rows holding them${colsText}`
      : `${fmtInt(inWin)} of ${fmtInt(cs.count)} shown in rows ${fmtInt(r0)}–${fmtInt(Math.min(nr, r0 + rows) - 1)}${colsText}`;
    modeBtn.textContent = mode === "rows" ? "window" : "rows with cells";
    modeBtn.hidden = !lineageRows.length || truncated || lineageRows.length > 12;
    drawOverview(overview, cs.overview, nr, nc, mode === "rows" ? null : [r0, c0, rows, cols]);
  };
  const moveTo = async (nr0, nc0, keepMode) => {
    if (!keepMode) mode = "window";
    r0 = clamp(nr0, 0, Math.max(0, nr - rows));
    c0 = clamp(nc0, 0, Math.max(0, nc - cols));
    if (truncated && opts.refetch) {
      try {
        const part = await opts.refetch(`${r0}:${r0 + rows},${c0}:${c0 + cols}`);
        cells = part.cells;
      } catch (err) { showError(err); }
    }
    draw();
  };
  modeBtn.onclick = () => { mode = mode === "rows" ? "window" : "rows"; draw(); };
  overview.onclick = (ev) => {
    const rb = cs.overview.length, cb = cs.overview[0].length;
    const r = overview.getBoundingClientRect();
    const br = Math.floor((ev.clientY - r.top) / r.height * rb), bc = Math.floor((ev.clientX - r.left) / r.width * cb);
    moveTo(Math.floor((br + 0.5) * nr / rb) - Math.floor(rows / 2), Math.floor((bc + 0.5) * nc / cb) - Math.floor(cols / 2));
  };
  const nav = el("span", {class: "nav"},
    el("button", {type: "button", title: "up", onclick: () => moveTo(r0 - rows, c0)}, "▲"),
    el("button", {type: "button", title: "down", onclick: () => moveTo(r0 + rows, c0)}, "▼"),
    nc > cols ? el("button", {type: "button", title: "left", onclick: () => moveTo(r0, c0 - cols, true)}, "◀") : null,
    nc > cols ? el("button", {type: "button", title: "right", onclick: () => moveTo(r0, c0 + cols, true)}, "▶") : null);
  add(card,
    el("div", {class: "card-head"}, el("strong", null, cs.name), el("span", {class: "muted"}, ` ${shapeText(cs.shape)}`),
      el("span", {class: "count-pill" + (cs.count ? "" : " zero")}, `${fmtInt(cs.count)} cell${cs.count === 1 ? "" : "s"}`)),
    cs.count ? el("p", {class: "bbox"}, bboxText()) : null,
    cs.count ? el("div", {class: "card-body"}, el("div", {class: "ov-col"}, overview, nav, modeBtn), holder) : null,
    cs.count ? status : null);
  if (cs.count) draw();
  return card;
}

function drawOverview(canvas, bins, nr, nc, win) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, rb = bins.length, cb = bins[0].length;
  ctx.fillStyle = "#f1f5f9";
  ctx.fillRect(0, 0, W, H);
  let max = 0;
  for (const row of bins) for (const v of row) max = Math.max(max, v);
  for (let i = 0; i < rb; i++) {
    for (let j = 0; j < cb; j++) {
      const v = bins[i][j];
      if (!v) continue;
      const a = 0.35 + 0.65 * Math.log1p(v) / Math.log1p(max);
      ctx.fillStyle = `rgba(234, 88, 12, ${a.toFixed(3)})`;
      const x = Math.floor(j * W / cb), y = Math.floor(i * H / rb);
      ctx.fillRect(x, y, Math.max(2, Math.ceil((j + 1) * W / cb) - x), Math.max(2, Math.ceil((i + 1) * H / rb) - y));
    }
  }
  if (!win) return;
  const [r0, c0, rows, cols] = win;
  ctx.strokeStyle = "#1d4ed8";
  ctx.lineWidth = 1.5;
  const x = c0 / nc * W, y = r0 / nr * H;
  ctx.strokeRect(x + 0.75, y + 0.75, Math.max(3, cols / nc * W - 1.5), Math.max(3, rows / nr * H - 1.5));
}

async function traceRow(r) {
  const s = state.cells;
  s.traceRow = r;
  renderMainGrid();
  showTab("row");
  const panel = document.getElementById("trace-panel");
  try {
    const t = await api(`/api/runs/${enc(state.run)}/objects/${enc(s.name)}/trace`, {row: r});
    if (state.cells !== s || s.traceRow !== r) return;
    const files = [...new Set(t.sources.map((x) => x.path).filter(Boolean))];
    fill(panel, 
      el("h3", null, `Source file lines of ${t.object} row ${t.row}`),
      el("p", {class: "summary", id: "trace-summary"}, `${fmtInt(t.count)} source row${t.count === 1 ? "" : "s"} from ${files.length} file${files.length === 1 ? "" : "s"} `,
        badge(t.complete ? "FULL" : "PARTIAL"), t.truncated ? el("span", {class: "muted"}, ` (first ${t.sources.length} listed)`) : null),
      el("table", {class: "trace", id: "trace-table"},
        el("thead", null, el("tr", null, ["table", "row", "line", "file", "columns used"].map((h) => el("th", {class: h === "row" || h === "line" ? "num" : null}, h)))),
        el("tbody", null, t.sources.map((x) => el("tr", {"data-table": x.table, "data-row": x.row, "data-line": x.line === null ? "" : x.line, "data-path": x.path || ""},
          el("td", null, sourceLink(x.table, x.row)), el("td", {class: "num"}, x.row), el("td", {class: "num"}, x.line === null ? "–" : x.line),
          el("td", {class: "path", title: x.path || "(memory)"}, x.path ? x.path.split(/[\\/]/).pop() : "(memory)"),
          el("td", {class: "cols", title: x.columns.join(", ")}, x.columns.join(", ")))))),
      t.reasons.length ? el("ul", {class: "reasons"}, t.reasons.map((x) => el("li", null, x))) : null);
  } catch (err) { showError(err); }
}

// a source table's name, linking to its cells at a row when the run has that source
function sourceLink(table, row) {
  const src = state.detail && state.detail.sources.find((x) => x.name === table);
  if (!src || !src.shape.length || !(row >= 0 && row < src.shape[0])) return el("span", {class: "tbl"}, table);
  const cell = [row, ...src.shape.slice(1).map(() => 0)].join(",");
  return el("a", {class: "tbl", href: `#/${enc(state.run)}/cells/${enc(table)}/${cell}`, title: `the cells of ${table} at row ${row}`}, table);
}

// --------------------------------------------------------------------------------------------- results view
async function showResults(name) {
  const main = document.getElementById("main");
  const list = state.detail.results;
  if (!list.length) {
    fill(main, el("div", {class: "results-view pad", id: "results-empty"}, el("h2", null, "Attribution & results"),
      el("p", {class: "muted"}, `Run ${state.run} holds no stored results. Attribution (which training rows made a prediction, down to source file lines) and unlearning figures appear here when they are saved with the run.`)));
    return;
  }
  const pick = name && list.some((r) => r.name === name) ? name : list[0].name;
  const tabs = el("div", {class: "tabs"}, list.map((r) => el("a", {href: `#/${enc(state.run)}/results/${enc(r.name)}`,
    class: "tab" + (r.name === pick ? " active" : ""), "data-result": r.name}, r.name, r.kind !== r.name ? el("span", {class: "muted"}, ` ${r.kind}`) : null)));
  const body = el("div", {class: "result-body"}, el("p", {class: "muted"}, "Loading…"));
  fill(main, el("div", {class: "results-view"}, el("h2", null, "Attribution & results"), tabs, body));
  const res = await api(`/api/runs/${enc(state.run)}/results/${enc(pick)}`);
  if (res.kind === "attribution") renderAttribution(body, res.payload);
  else if (res.kind === "unlearning") renderUnlearning(body, res.payload);
  else if (res.kind === "table" && res.payload.columns) renderTable(body, res.payload);
  else fill(body, el("pre", null, JSON.stringify(res.payload, null, 1)));
}

function renderAttribution(body, p) {
  const rows = p.test_rows || [];
  const list = el("table", {class: "test-rows", id: "test-rows"},
    el("thead", null, el("tr", null, el("th", null, "test row"), el("th", null, "label"), el("th", null, "output"))),
    el("tbody", null, rows.map((t, i) => {
      const tr = el("tr", {class: "clickable", "data-test-row": t.test_row},
        el("td", {class: "num"}, t.test_row), el("td", null, String(t.label)), el("td", {class: "num", title: t.output || "output"}, fmtScore(t.prediction)));
      tr.onclick = () => { list.querySelectorAll("tr.active").forEach((x) => x.classList.remove("active")); tr.classList.add("active"); showTestRow(t); };
      return tr;
    })));
  const detail = el("div", {class: "attr-detail", id: "attr-detail"}, el("p", {class: "muted"}, "Click a test row."));
  fill(body, 
    el("p", {class: "summary"}, `${p.model || "model"} · ${fmtInt(p.n_train)} training rows` + (p.train_object ? ` (${p.train_object})` : "") + ` · ${rows.length} test rows explained`),
    el("div", {class: "attr-cols"}, el("div", {class: "panel attr-list"}, list), el("div", {class: "panel"}, detail)));
  const showTestRow = (t) => {
    const srcText = (ss) => (ss || []).map((s) => el("div", {class: "src-line", title: s.path || ""},
      sourceLink(s.table, s.row), ` row ${s.row}`, s.line !== null && s.line !== undefined ? ` · line ${s.line}` : ""));
    const table = (title, items, cls) => [el("h3", null, title), el("table", {class: "attr-rows " + cls},
      el("thead", null, el("tr", null, el("th", null, "training row"), el("th", null, "score"), el("th", null, "source lines"))),
      el("tbody", null, (items || []).map((x) => el("tr", {"data-train-row": x.train_row},
        el("td", {class: "num"}, x.train_row), el("td", {class: "num " + (x.score >= 0 ? "pos" : "neg")}, fmtScore(x.score)),
        el("td", null, srcText(x.sources))))))];
    const cf = t.counterfactual;
    const cfParts = cf ? [
      el("h3", null, "Effect of deleting each file (output with − output without)"),
      barChart(Object.entries(cf.delete_table || {}).map(([table, d]) => ({table, score: d.effect})), "counterfactual-chart"),
      el("h3", null, "Largest effect of deleting one source row, per table"),
      barChart(Object.entries(cf.tables || {}).map(([table, s]) => ({table, score: s.largest || 0})), "cf-largest-chart"),
      el("h3", null, "Source rows whose deletion would change it most"),
      el("table", {class: "attr-rows cf-rows", id: "cf-rows"},
        el("thead", null, el("tr", null, el("th", null, "source row"), el("th", null, "effect"), el("th", null, "training rows changed"))),
        el("tbody", null, (cf.largest || []).map((e) => el("tr", null,
          el("td", null, el("div", {class: "src-line", title: e.path || ""}, sourceLink(e.table, e.row), ` row ${e.row}`,
            e.line !== null && e.line !== undefined ? ` · line ${e.line}` : "")),
          el("td", {class: "num " + (e.effect >= 0 ? "pos" : "neg")}, fmtScore(e.effect)),
          el("td", {class: "num"}, e.train_rows))))),
      el("p", {class: "muted"}, Object.entries(cf.tables || {}).map(([table, s]) =>
        `${table}: ${fmtInt(s.rows)} rows, ${fmtInt(s.fed_nothing)} fed nothing (effect 0)${s.exact ? "" : ", ETL re-run"}`).join(" · "))] : [];
    fill(detail, 
      el("h2", null, `Test row ${t.test_row}`),
      el("p", {class: "muted"}, `label ${t.label} · ${t.output || "output"} ${fmtScore(t.prediction)}`),
      ...cfParts,
      el("h3", null, cf ? "Score by source table (equal split of training-row scores: a convention)" : "Score by source table"),
      barChart(t.by_source || []),
      table("Most helpful training rows", t.top, "top"),
      table("Most harmful training rows", t.bottom, "bottom"));
  };
  if (rows.length) { list.querySelector("tbody tr").classList.add("active"); showTestRow(rows[0]); }
}

function barChart(items, id) {
  // one bar per source table from a zero line; labels on the left, values in a column on the right
  const rowH = 28, labelW = 190, barW = 300, valueW = 90, pad = 8;
  const W = labelW + barW + valueW, H = pad * 2 + Math.max(1, items.length) * rowH;
  const max = Math.max(1e-300, ...items.map((x) => Math.abs(x.score)));
  const hasNeg = items.some((x) => x.score < 0), hasPos = items.some((x) => x.score > 0);
  const zero = labelW + (hasNeg && hasPos ? barW / 2 : hasNeg ? barW - 4 : 4);
  const span = hasNeg && hasPos ? barW / 2 - 6 : barW - 10;
  const chart = svg("svg", {class: "bars", id: id || "by-source-chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "score by source table"});
  items.forEach((x, i) => {
    const y = pad + i * rowH;
    const w = Math.abs(x.score) / max * span;
    const x0 = x.score >= 0 ? zero : zero - w;
    const label = x.table.length > 24 ? x.table.slice(0, 23) + "…" : x.table;
    add(chart, svg("text", {x: labelW - 10, y: y + rowH / 2 + 4, "text-anchor": "end", class: "bar-label"}, label, svg("title", null, x.table)),
      svg("rect", {x: labelW, y: y + 3, width: barW, height: rowH - 6, class: "bar-track"}),
      svg("rect", {x: x0, y: y + 6, width: Math.max(1.5, w), height: rowH - 12, rx: 3, class: "bar " + (x.score >= 0 ? "pos" : "neg"), "data-table": x.table, "data-score": x.score},
        svg("title", null, `${x.table}: ${x.score}`)),
      svg("text", {x: W - 4, y: y + rowH / 2 + 4, "text-anchor": "end", class: "bar-value " + (x.score >= 0 ? "pos" : "neg")}, fmtScore(x.score)));
  });
  add(chart, svg("line", {x1: zero, x2: zero, y1: 2, y2: H - 2, class: "axis"}));
  return chart;
}

function renderTable(body, p) {
  fill(body, el("div", {class: "panel"}, el("table", {class: "attr-rows result-table"},
    el("thead", null, el("tr", null, p.columns.map((c) => el("th", null, String(c))))),
    el("tbody", null, (p.rows || []).map((r) => el("tr", null, r.map((v) => el("td", {class: typeof v === "number" ? "num" : null},
      typeof v === "number" ? fmtScore(v) : String(v)))))))));
}

function renderUnlearning(body, p) {
  const figs = Object.entries(p.figures || {});
  fill(body, el("div", {class: "panel unlearning"},
    el("p", {class: "summary"}, `${p.method || "unlearning"} · ${fmtInt(p.n_forgotten)} source rows forgotten`),
    el("table", {class: "kv figures", id: "unlearning-figures"}, figs.map(([k, v]) => el("tr", {"data-figure": k},
      el("th", null, k.replace(/_/g, " ")), el("td", {class: "num"}, typeof v === "number" ? fmtScore(v) : String(v))))),
    p.detail ? el("details", null, el("summary", null, "Detail"), el("pre", null, JSON.stringify(p.detail, null, 1))) : null));
}

// --------------------------------------------------------------------------------------------- start
async function start() {
  try {
    state.store = await api("/api/store");
  } catch (err) { showError(err); return; }
  document.getElementById("store-path").textContent = state.store.path;
  document.getElementById("store-path").title = `store schema ${state.store.schema_version}, whence ${state.store.whence_version}`;
  const sel = document.getElementById("run-select");
  fill(sel, ...state.store.runs.map((r) => el("option", {value: r}, r)));
  sel.onchange = () => go(`#/${enc(sel.value)}/graph`);
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}

start();
