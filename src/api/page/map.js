// The city map on a <canvas>, drawn from coordinates only (Web Mercator, fitted to the devices'
// bounding box), so it works with no tile server and no internet. With a configured tile URL,
// tiles are drawn underneath in the same projection.

import { SEVERITY_COLOUR, SEVERITY_RANK, CREW_COLOUR, deptColour, isActive, titleCase, el } from "./format.js";

const PAD = 48; // css px kept free around the fitted box, so edge markers are not clipped
const TILE = 256;

// Web Mercator to the unit square (x east, y south), as tile servers use.
function project(lat, lon) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return { x: (lon + 180) / 360, y: 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI) };
}

export class CityMap {
  constructor(canvas, tip, legend, onSelect) {
    this.canvas = canvas;
    this.tip = tip;
    this.onSelect = onSelect;
    this.devices = [];
    this.incidents = [];
    this.crews = [];
    this.selected = null;
    this.tileUrl = null;
    this.tiles = new Map();
    this.view = null;
    this.dirty = true;
    this.buildLegend(legend);
    new ResizeObserver(() => this.invalidate(true)).observe(canvas.parentElement);
    canvas.addEventListener("click", (e) => this.click(e));
    canvas.addEventListener("mousemove", (e) => this.hover(e));
    canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    const loop = () => {
      // Open incidents pulse; otherwise redraw only when something changed.
      if (this.dirty || this.incidents.some((i) => i.status === "open")) this.draw();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  buildLegend(legend) {
    const item = (cls, colour, text) => el("span", { class: cls, style: { "--c": colour } }, text);
    legend.replaceChildren(
      item("", deptColour("water"), "water"),
      item("l-ring", SEVERITY_COLOUR.critical, "critical"),
      item("", deptColour("traffic"), "traffic"),
      item("l-ring", SEVERITY_COLOUR.high, "high"),
      item("", deptColour("environment"), "environment"),
      item("l-ring", SEVERITY_COLOUR.medium, "medium"),
      item("l-ring", "#9fb0c3", "silent / never seen"),
      item("l-ring", "#ff3030", "faulty"),
      item("l-tri", CREW_COLOUR.available, "crew available"),
      item("l-tri", CREW_COLOUR.en_route, "crew en route"),
      item("l-tri", CREW_COLOUR.on_scene, "crew on scene"),
      item("l-tri", CREW_COLOUR.off_duty, "crew off duty / silent"),
    );
  }

  setTileUrl(url) {
    this.tileUrl = url || null;
    this.invalidate(false);
  }

  update(state) {
    const devicesChanged = state.devices !== this.devices;
    this.devices = state.devices;
    this.incidents = state.incidents;
    this.crews = state.crews;
    this.selected = state.selected;
    this.invalidate(devicesChanged && !this.view);
  }

  invalidate(refit) {
    if (refit) this.view = null;
    this.dirty = true;
  }

  // Scale and offset that fit every device (and crew home) into the canvas, aspect preserved.
  fit(w, h) {
    const pts = [];
    for (const d of this.devices) if (d.location) pts.push(project(d.location.lat, d.location.lon));
    for (const c of this.crews) {
      const loc = (c.status && c.status.location) || c.home;
      if (loc) pts.push(project(loc.lat, loc.lon));
    }
    for (const i of this.incidents) pts.push(project(i.location.lat, i.location.lon));
    if (pts.length === 0) return null;
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const p of pts) {
      x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x);
      y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
    }
    const span = Math.max(x1 - x0, y1 - y0, 1e-6);
    const scale = Math.min((w - 2 * PAD) / Math.max(x1 - x0, span * 0.05), (h - 2 * PAD) / Math.max(y1 - y0, span * 0.05));
    return { scale, cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, w, h };
  }

  toScreen(lat, lon) {
    const p = project(lat, lon);
    const v = this.view;
    return { x: v.w / 2 + (p.x - v.cx) * v.scale, y: v.h / 2 + (p.y - v.cy) * v.scale };
  }

  draw() {
    this.dirty = false;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      this.view = null;
    }
    if (!this.view || this.view.w !== w || this.view.h !== h) this.view = this.fit(w, h);
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#070a0e";
    g.fillRect(0, 0, w, h);
    if (!this.view) return;
    if (this.tileUrl) this.drawTiles(g);
    this.drawGrid(g, w, h);
    this.drawDistricts(g);
    for (const d of this.devices) this.drawDevice(g, d);
    const incidents = [...this.incidents].sort((a, b) => (isActive(a) - isActive(b)) || (SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]));
    for (const i of incidents) this.drawIncident(g, i);
    for (const crew of this.crews) this.drawCrew(g, crew);
  }

  drawTiles(g) {
    const v = this.view;
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(v.scale / TILE))));
    const n = 2 ** z;
    const size = v.scale / n;
    const left = v.cx - v.w / 2 / v.scale, top = v.cy - v.h / 2 / v.scale;
    const right = v.cx + v.w / 2 / v.scale, bottom = v.cy + v.h / 2 / v.scale;
    g.save();
    g.globalAlpha = 0.45; // tiles are context; markers must stay the brightest thing on screen
    for (let tx = Math.floor(left * n); tx <= Math.floor(right * n); tx++) {
      for (let ty = Math.floor(top * n); ty <= Math.floor(bottom * n); ty++) {
        if (ty < 0 || ty >= n) continue;
        const url = this.tileUrl.replace("{z}", z).replace("{x}", ((tx % n) + n) % n).replace("{y}", ty);
        let img = this.tiles.get(url);
        if (!img) {
          img = new Image();
          img.onload = () => this.invalidate(false);
          img.src = url;
          this.tiles.set(url, img);
        }
        if (img.complete && img.naturalWidth > 0) {
          g.drawImage(img, v.w / 2 + (tx / n - v.cx) * v.scale, v.h / 2 + (ty / n - v.cy) * v.scale, size + 0.5, size + 0.5);
        }
      }
    }
    g.restore();
  }

  // A faint 1 km grid gives a sense of distance without any base map.
  drawGrid(g, w, h) {
    const v = this.view;
    const latC = (Math.atan(Math.sinh(Math.PI * (1 - 2 * v.cy))) * 180) / Math.PI;
    const unitsPerKm = 1 / (40075 * Math.cos((latC * Math.PI) / 180));
    const step = unitsPerKm * v.scale;
    if (step < 12) return;
    g.strokeStyle = "rgba(120, 150, 190, 0.09)";
    g.lineWidth = 1;
    g.beginPath();
    for (let x = (w / 2) % step; x < w; x += step) { g.moveTo(x, 0); g.lineTo(x, h); }
    for (let y = (h / 2) % step; y < h; y += step) { g.moveTo(0, y); g.lineTo(w, y); }
    g.stroke();
    g.fillStyle = "rgba(159, 176, 195, 0.7)";
    g.font = "13px sans-serif";
    g.fillRect(w - 24 - step, h - 22, step, 3);
    g.fillText("1 km", w - 24 - step, h - 28);
  }

  drawDistricts(g) {
    const by = new Map();
    for (const d of this.devices) {
      if (!d.location || !d.district) continue;
      const p = this.toScreen(d.location.lat, d.location.lon);
      const acc = by.get(d.district) || { x: 0, y: 0, n: 0 };
      acc.x += p.x; acc.y += p.y; acc.n += 1;
      by.set(d.district, acc);
    }
    g.font = "bold 20px sans-serif";
    g.textAlign = "center";
    g.fillStyle = "rgba(159, 176, 195, 0.28)";
    for (const [name, a] of by) g.fillText(name.toUpperCase(), a.x / a.n, a.y / a.n - 14);
    g.textAlign = "left";
  }

  drawDevice(g, d) {
    if (!d.location) return; // unregistered devices have no position to draw
    const p = this.toScreen(d.location.lat, d.location.lon);
    const colour = deptColour(d.department);
    g.beginPath();
    g.arc(p.x, p.y, 5, 0, 2 * Math.PI);
    if (d.status === "online") {
      g.fillStyle = colour;
      g.fill();
    } else if (d.status === "faulty") {
      g.fillStyle = colour;
      g.fill();
      g.lineWidth = 2.5;
      g.strokeStyle = "#ff3030";
      g.beginPath();
      g.arc(p.x, p.y, 8, 0, 2 * Math.PI);
      g.stroke();
    } else {
      g.lineWidth = 2;
      g.strokeStyle = d.status === "silent" ? "#9fb0c3" : "rgba(159, 176, 195, 0.5)";
      g.stroke();
    }
  }

  drawIncident(g, i) {
    const p = this.toScreen(i.location.lat, i.location.lon);
    const colour = SEVERITY_COLOUR[i.severity] || "#ffffff";
    const active = isActive(i);
    const base = active ? 12 + 4 * (SEVERITY_RANK[i.severity] || 0) : 8;
    g.save();
    g.globalAlpha = active ? 1 : 0.35;
    if (i.status === "open") {
      const t = (performance.now() % 1600) / 1600;
      g.beginPath();
      g.arc(p.x, p.y, base + 18 * t, 0, 2 * Math.PI);
      g.strokeStyle = colour;
      g.globalAlpha = 1 - t;
      g.lineWidth = 3;
      g.stroke();
      g.globalAlpha = 1;
    }
    g.beginPath();
    g.arc(p.x, p.y, base, 0, 2 * Math.PI);
    g.fillStyle = colour + "40";
    g.fill();
    g.lineWidth = 4;
    g.strokeStyle = colour;
    g.stroke();
    if (i.id === this.selected) {
      g.beginPath();
      g.arc(p.x, p.y, base + 7, 0, 2 * Math.PI);
      g.lineWidth = 2;
      g.strokeStyle = "#ffffff";
      g.stroke();
    }
    if (active) {
      g.font = "bold 16px sans-serif";
      const label = titleCase(i.kind);
      const tw = g.measureText(label).width;
      // Label to the right, or to the left when it would run off the map.
      const left = p.x + base + 6 + tw + 10 > this.view.w ? p.x - base - 16 - tw : p.x + base + 6;
      g.fillStyle = "rgba(7, 10, 14, 0.8)";
      g.fillRect(left, p.y - 11, tw + 10, 22);
      g.fillStyle = "#eef3f8";
      g.fillText(label, left + 5, p.y + 6);
    }
    g.restore();
  }

  crewPos(c) {
    return (c.status && c.status.location) || c.home;
  }

  drawCrew(g, c) {
    const loc = this.crewPos(c);
    if (!loc) return;
    const p = this.toScreen(loc.lat, loc.lon);
    const state = c.status ? c.status.state : "off_duty";
    g.beginPath();
    g.moveTo(p.x, p.y - 10);
    g.lineTo(p.x + 9, p.y + 7);
    g.lineTo(p.x - 9, p.y + 7);
    g.closePath();
    g.fillStyle = CREW_COLOUR[state] || "#ffffff";
    g.fill();
    g.lineWidth = 2;
    g.strokeStyle = "#070a0e";
    g.stroke();
    g.font = "bold 13px sans-serif";
    g.fillStyle = "#eef3f8";
    g.fillText(c.crew_id, p.x + 11, p.y + 5);
  }

  // Everything under the pointer, nearest first: incidents win over crews over devices.
  pick(e, radius) {
    if (!this.view) return null;
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    const near = (lat, lon) => {
      const p = this.toScreen(lat, lon);
      return Math.hypot(p.x - x, p.y - y);
    };
    let best = null;
    const consider = (kind, item, d, bonus) => {
      if (d <= radius && (!best || d - bonus < best.d)) best = { kind, item, d: d - bonus };
    };
    for (const i of this.incidents) consider("incident", i, near(i.location.lat, i.location.lon), isActive(i) ? 12 : 0);
    for (const c of this.crews) {
      const loc = this.crewPos(c);
      if (loc) consider("crew", c, near(loc.lat, loc.lon), 4);
    }
    for (const d of this.devices) if (d.location) consider("device", d, near(d.location.lat, d.location.lon), 0);
    return best;
  }

  click(e) {
    const hit = this.pick(e, 26);
    if (hit && hit.kind === "incident") this.onSelect(hit.item.id);
  }

  hover(e) {
    const hit = this.pick(e, 16);
    this.canvas.style.cursor = hit && hit.kind === "incident" ? "pointer" : "default";
    if (!hit) {
      this.tip.hidden = true;
      return;
    }
    const it = hit.item;
    const text = {
      incident: () => `${titleCase(it.kind)} · ${it.severity} · ${it.status}`,
      crew: () => `Crew ${it.crew_id} · ${it.department || "?"} · ${titleCase(it.status ? it.status.state : "no status yet")}`,
      device: () => `${it.device_id} · ${it.department} · ${it.status}${it.faults.length ? " · " + it.faults.join(", ") : ""}`,
    }[hit.kind]();
    const r = this.canvas.getBoundingClientRect();
    this.tip.textContent = text;
    this.tip.style.left = `${e.clientX - r.left + 14}px`;
    this.tip.style.top = `${e.clientY - r.top + 14}px`;
    this.tip.hidden = false;
  }
}
