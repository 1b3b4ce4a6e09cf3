// The page's entry point: sign-in, the shared state (incidents, devices, crews), the live
// stream, and re-rendering the list, map and panel whenever the state changes.

import { token, get, getOptional, pageConfig, ApiError } from "./api.js";
import { connect } from "./live.js";
import { CityMap } from "./map.js";
import { IncidentList } from "./list.js";
import { Panel } from "./panel.js";
import { el, isActive } from "./format.js";

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  incidents: new Map(),
  devices: new Map(),
  deviceList: [],
  crews: new Map(),
  selected: null,
};
let live = null;
let map = null;
let list = null;
let panel = null;
let renderQueued = false;

// Exposed for operators' debugging in the console and for the browser test.
window.citybrain = { state, stream: () => live && live.stats, cspViolations: [] };
// Anything the page's Content-Security-Policy blocks is a bug in the page: keep a record.
document.addEventListener("securitypolicyviolation", (e) => {
  window.citybrain.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});

function showLogin(message) {
  $("main").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  $("token").value = "";
  $("token").focus();
}

function setConn(ok) {
  $("conn").className = `conn ${ok ? "conn-live" : "conn-off"}`;
  $("conn").textContent = ok ? "live" : "reconnecting";
}

// Many events can arrive in one burst: render once per frame.
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const incidents = [...state.incidents.values()];
    list.update(incidents, state.selected);
    map.update({ devices: state.deviceList, incidents, crews: [...state.crews.values()], selected: state.selected });
    const sel = state.selected && state.incidents.get(state.selected);
    if (sel) panel.show(sel);
    renderCounts(incidents);
  });
}

function renderCounts(incidents) {
  const active = incidents.filter(isActive);
  const by = (s) => active.filter((i) => i.severity === s).length;
  const chips = ["critical", "high", "medium", "low"]
    .filter((s) => by(s) > 0)
    .map((s) => el("span", { class: `count sev-${s}` }, `${by(s)} ${s}`));
  const open = active.filter((i) => i.status === "open").length;
  $("counts").replaceChildren(...chips, el("span", { class: "count" }, `${open} unacknowledged`));
}

// A change never replaces a newer copy we already hold (REST and stream can cross).
function upsertIncident(inc) {
  const old = state.incidents.get(inc.id);
  if (old && new Date(inc.updated_at) < new Date(old.updated_at)) return;
  state.incidents.set(inc.id, inc);
  render();
}

function upsertDevice(d) {
  state.devices.set(d.device_id, d);
  state.deviceList = [...state.devices.values()];
  render();
}

function select(id) {
  state.selected = id;
  $("main").classList.toggle("with-panel", Boolean(id));
  if (!id) panel.hide();
  render();
}

async function loadAll() {
  const [incidents, devices, crews] = await Promise.all([
    get("/api/v1/incidents?limit=2000"),
    get("/api/v1/devices"),
    getOptional("/api/v1/crews"),
  ]);
  state.incidents = new Map(incidents.map((i) => [i.id, i]));
  state.devices = new Map(devices.map((d) => [d.device_id, d]));
  state.deviceList = devices;
  state.crews = new Map((crews || []).map((c) => [c.crew_id, c]));
  render();
}

async function tokenRefused() {
  try {
    await get("/api/v1/me");
    return false;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      signOut("Your token was refused. Sign in again.");
      return true;
    }
    return false;
  }
}

function signOut(message) {
  if (live) live.close();
  live = null;
  token.clear();
  showLogin(message);
}

async function start() {
  if (!token.get()) return showLogin();
  try {
    state.me = await get("/api/v1/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) token.clear();
    return showLogin(e instanceof ApiError ? e.describe() : String(e));
  }
  $("login").hidden = true;
  $("main").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = state.me.name;
  $("who-role").textContent = state.me.role;
  panel.setRole(Boolean(state.me.can_operate));
  const cfg = await pageConfig();
  map.setTileUrl(cfg.tile_url);
  // Stream first, then the snapshot: changes made in between arrive on the stream and the
  // newer copy wins in upsertIncident.
  live = connect({
    onIncident: upsertIncident,
    onDevice: upsertDevice,
    onCrew: (c) => {
      state.crews.set(c.crew_id, c);
      render();
    },
    onResync: () => loadAll().catch((e) => console.warn("reload failed", e)),
    onStatus: setConn,
    onRefused: tokenRefused,
  });
  try {
    await loadAll();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signOut(e.describe());
    $("list-empty").hidden = false;
    $("list-empty").textContent = `Could not load incidents: ${e.message}`;
  }
}

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
}

function init() {
  map = new CityMap($("map"), $("map-tip"), $("legend"), select);
  list = new IncidentList(
    { list: $("list"), empty: $("list-empty"), dept: $("f-dept"), kind: $("f-kind"), resolved: $("f-resolved") },
    select,
  );
  panel = new Panel($("panel"), {
    onClose: () => select(null),
    onChanged: upsertIncident,
    crews: () => [...state.crews.values()],
  });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    token.set(t);
    start();
  });
  $("logout").addEventListener("click", () => signOut());
  tick();
  setInterval(tick, 1000);
  // Ages in the list ("3 min") move with the clock.
  setInterval(render, 30000);
  start();
}

init();
