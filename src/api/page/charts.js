// Sparklines of the readings behind an incident, one per device and metric, as inline SVG: the
// device's recent readings (from GET /api/v1/devices/{id}/readings) as a line, and the evidence
// values as dots on it. Without recent readings (an old incident), the evidence alone.

import { el, number } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 300, H = 48, M = 4;
// Readings this long before the first evidence and after the last are shown around it.
const MARGIN_MS = 15 * 60 * 1000;

function svg(tag, attrs) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
}

const point = (ts, v) => ({ t: new Date(ts).getTime(), v });
const valid = (p) => Number.isFinite(p.t) && Number.isFinite(p.v);

// Evidence grouped by device+metric, each series sorted by time.
export function seriesOf(evidence) {
  const groups = new Map();
  for (const e of evidence || []) {
    const key = `${e.device_id} ${e.metric}`;
    if (!groups.has(key)) groups.set(key, { device: e.device_id, metric: e.metric, points: [] });
    const p = point(e.ts, e.value);
    if (valid(p)) groups.get(key).points.push(p);
  }
  for (const g of groups.values()) g.points.sort((a, b) => a.t - b.t);
  return [...groups.values()];
}

// The readings of a series' device and metric around its evidence, from a readings response.
export function readingsAround(series, response) {
  const raw = (response && response.metrics && response.metrics[series.metric]) || [];
  if (series.points.length === 0) return [];
  const from = series.points[0].t - MARGIN_MS;
  const to = series.points[series.points.length - 1].t + MARGIN_MS;
  return raw.map((r) => point(r.ts, r.value)).filter((p) => valid(p) && p.t >= from && p.t <= to);
}

export function sparkline(series, colour, readings) {
  const all = readings.concat(series.points);
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  if (all.length === 0) return box;
  const ts = all.map((p) => p.t), vs = all.map((p) => p.v);
  const t0 = Math.min(...ts), t1 = Math.max(...ts);
  let v0 = Math.min(...vs), v1 = Math.max(...vs);
  if (v1 - v0 < 1e-9) { v0 -= 1; v1 += 1; } // a flat series sits in the middle, not on an edge
  const x = (t) => (t1 === t0 ? W / 2 : M + ((t - t0) / (t1 - t0)) * (W - 2 * M));
  const y = (v) => H - M - ((v - v0) / (v1 - v0)) * (H - 2 * M);
  const line = readings.length > 1 ? readings : series.points;
  const d = line.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  const stroke = readings.length > 1 ? "#9fb0c3" : colour;
  box.append(svg("path", { d, fill: "none", stroke, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  for (const p of series.points) {
    box.append(svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 3, fill: colour }));
  }
  return box;
}

export function chartCard(series, colour, readings = []) {
  const vs = readings.concat(series.points).map((p) => p.v);
  const latest = readings.length ? readings[readings.length - 1] : series.points[series.points.length - 1];
  const range = vs.length ? `${number(Math.min(...vs))} – ${number(Math.max(...vs))}` : "";
  const source = readings.length ? `${readings.length} readings` : `${series.points.length} evidence`;
  return el(
    "div",
    { class: "chart", dataset: { readings: readings.length } },
    el("div", { class: "c-head" },
      el("span", {}, el("b", {}, series.device), ` ${series.metric}`),
      el("span", {}, `last ${latest ? number(latest.v) : "—"} · ${range} · ${source}`)),
    sparkline(series, colour, readings),
  );
}
