// Shared formatting: names, colours and times. Pure functions, no DOM state.

export const SEVERITY_RANK = { critical: 3, high: 2, medium: 1, low: 0 };

// Kept in step with style.css (:root): the canvas cannot read CSS variables cheaply per frame.
export const SEVERITY_COLOUR = {
  critical: "#ff4d4d",
  high: "#ff9a3d",
  medium: "#ffd84d",
  low: "#8fd3ff",
};

const DEPT_COLOUR = {
  water: "#3fa7ff",
  traffic: "#ffb000",
  environment: "#5fd35f",
};

// Departments outside the three shipped ones still get a stable, distinct colour.
const EXTRA = ["#c792ea", "#f78c6c", "#89ddff", "#ff5370", "#c3e88d"];

export function deptColour(dept) {
  if (!dept) return "#9fb0c3";
  if (DEPT_COLOUR[dept]) return DEPT_COLOUR[dept];
  let h = 0;
  for (const ch of dept) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length];
}

export const CREW_COLOUR = {
  available: "#46d982",
  en_route: "#4db8ff",
  on_scene: "#e070ff",
  off_duty: "#6b7a8c",
};

// Statuses in which an incident still needs someone; the rest sink to the bottom.
const DONE = new Set(["resolved", "closed"]);
export const isActive = (inc) => !DONE.has(inc.status);

export function titleCase(s) {
  return String(s || "").replace(/_/g, " ").replace(/\b\w/g, (c) => c.toUpperCase());
}

export function clockTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function age(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  if (!Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 24 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d`;
}

export function number(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

// Small DOM builder: el("span", {class: "x"}, "text", child). Text is always set as text, never
// as HTML, so device-supplied strings cannot inject markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    // Through the CSSOM: the page's CSP forbids style attributes.
    else if (k === "style") for (const [prop, val] of Object.entries(v)) node.style.setProperty(prop, val);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const sevBadge = (sev) => el("span", { class: `sev sev-${sev}` }, sev);
export const statusBadge = (st) => el("span", { class: `status status-${st}` }, titleCase(st));
export const deptBadge = (d) => el("span", { class: `dept dept-${d}` }, d);
