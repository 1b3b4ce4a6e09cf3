// Sparklines of the readings behind an incident, one per device and metric, drawn as inline
// SVG from the evidence values (value over event time).

import { el, number } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 300, H = 48, M = 4;

function svg(tag, attrs) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
}

// Evidence grouped by device+metric, each series sorted by time.
export function seriesOf(evidence) {
  const groups = new Map();
  for (const e of evidence || []) {
    const key = `${e.device_id} ${e.metric}`;
    if (!groups.has(key)) groups.set(key, { device: e.device_id, metric: e.metric, points: [] });
    const t = new Date(e.ts).getTime();
    if (Number.isFinite(t) && Number.isFinite(e.value)) groups.get(key).points.push({ t, v: e.value });
  }
  for (const g of groups.values()) g.points.sort((a, b) => a.t - b.t);
  return [...groups.values()];
}

export function sparkline(series, colour) {
  const pts = series.points;
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  if (pts.length === 0) return box;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  let v0 = Math.min(...pts.map((p) => p.v)), v1 = Math.max(...pts.map((p) => p.v));
  if (v1 - v0 < 1e-9) { v0 -= 1; v1 += 1; } // a flat series sits in the middle, not on an edge
  const x = (t) => (t1 === t0 ? W / 2 : M + ((t - t0) / (t1 - t0)) * (W - 2 * M));
  const y = (v) => H - M - ((v - v0) / (v1 - v0)) * (H - 2 * M);
  const d = pts.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  box.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  for (const p of pts) {
    box.append(svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2.5, fill: colour }));
  }
  return box;
}

export function chartCard(series, colour) {
  const vs = series.points.map((p) => p.v);
  const last = vs.length ? vs[vs.length - 1] : NaN;
  const range = vs.length ? `${number(Math.min(...vs))} – ${number(Math.max(...vs))}` : "";
  return el(
    "div",
    { class: "chart" },
    el("div", { class: "c-head" },
      el("span", {}, el("b", {}, series.device), ` ${series.metric}`),
      el("span", {}, `last ${number(last)} · ${range} · ${vs.length} pts`)),
    sparkline(series, colour),
  );
}
