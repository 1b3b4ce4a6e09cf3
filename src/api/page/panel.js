// The incident panel: what, where, since when; the operator's actions; sparklines of the
// evidence; the evidence timeline; the audit trail (lifecycle history).

import { get, post, getOptional, ApiError } from "./api.js";
import { seriesOf, chartCard, readingsAround } from "./charts.js";
import { clockTime, titleCase, el, sevBadge, statusBadge, deptBadge, deptColour, number } from "./format.js";

const enc = encodeURIComponent;
const SILENCE_RADIUS_M = 500;
// Readings behind the charts are re-read at most this often while an incident is shown.
const READINGS_TTL_MS = 5000;

// Which actions make sense from which status (the server decides; this only greys out buttons
// that would certainly be refused). Unknown statuses leave everything enabled.
const ALLOWED = {
  open: ["ack", "dispatch", "resolve", "silence"],
  acknowledged: ["dispatch", "resolve", "silence"],
  dispatched: ["resolve", "silence"],
  on_scene: ["resolve", "silence"],
  resolved: ["silence"],
  closed: [],
};

export class Panel {
  constructor(root, callbacks) {
    this.root = root;
    this.cb = callbacks; // { onClose, onChanged(incident), crews() }
    this.$ = (id) => root.querySelector(`#${id}`);
    this.incident = null;
    this.canOperate = false;
    this.readings = { id: null, at: 0, byDevice: new Map() };
    this.$("p-close").addEventListener("click", () => this.cb.onClose());
    for (const b of root.querySelectorAll("[data-action]")) {
      b.addEventListener("click", () => this.act(b.dataset.action, b));
    }
  }

  setRole(canOperate) {
    this.canOperate = canOperate;
    this.$("p-actions").hidden = !canOperate;
  }

  show(incident) {
    const changed = !this.incident || this.incident.id !== incident.id;
    // The audit trail only moves with the lifecycle: re-read it on a new incident or status.
    const reload = changed || this.incident.status !== incident.status;
    this.incident = incident;
    this.root.hidden = false;
    if (changed) {
      this.error(null);
      this.note(null);
    }
    this.renderHead();
    this.renderActions();
    this.renderEvidence();
    if (reload) this.loadHistory();
  }

  hide() {
    this.incident = null;
    this.root.hidden = true;
  }

  renderHead() {
    const i = this.incident;
    this.$("p-title").textContent = titleCase(i.kind);
    const meta = [
      sevBadge(i.severity),
      statusBadge(i.status),
      ...i.departments.map(deptBadge),
      el("span", {}, `opened ${clockTime(i.opened_at)} · detected ${clockTime(i.detected_at)} · updated ${clockTime(i.updated_at)}`),
      typeof i.confidence === "number" ? el("span", {}, `confidence ${Math.round(i.confidence * 100)}%`) : null,
      el("span", {}, `${i.location.lat.toFixed(5)}, ${i.location.lon.toFixed(5)} · ${i.id}`),
      i.merged_into ? el("span", {}, `merged into ${i.merged_into}`) : null,
    ];
    this.$("p-meta").replaceChildren(...meta.filter(Boolean));
  }

  renderActions() {
    if (!this.canOperate) return;
    const allowed = ALLOWED[this.incident.status] || Object.values(ALLOWED).flat();
    for (const b of this.root.querySelectorAll("[data-action]")) {
      b.disabled = !allowed.includes(b.dataset.action);
    }
    // The server picks the nearest available crew of each department; show who is free.
    const free = this.cb
      .crews()
      .filter((c) => c.status && c.status.state === "available")
      .filter((c) => !c.department || this.incident.departments.includes(c.department));
    this.$("act-crews").textContent = `${free.length} crew${free.length === 1 ? "" : "s"} available`;
  }

  renderCharts() {
    const i = this.incident;
    const colour = deptColour(i.departments[0]);
    const byDevice = this.readings.id === i.id ? this.readings.byDevice : new Map();
    this.$("p-charts").replaceChildren(
      ...seriesOf(i.evidence).map((s) => chartCard(s, colour, readingsAround(s, byDevice.get(s.device)))),
    );
  }

  // One request per device behind the evidence; a device without readings just has none.
  async loadReadings() {
    const i = this.incident;
    const now = Date.now();
    if (this.readings.id === i.id && now - this.readings.at < READINGS_TTL_MS) return;
    this.readings = { id: i.id, at: now, byDevice: this.readings.id === i.id ? this.readings.byDevice : new Map() };
    const devices = [...new Set(i.evidence.map((e) => e.device_id))];
    const answers = await Promise.all(
      devices.map((d) => getOptional(`/api/v1/devices/${enc(d)}/readings`).catch(() => null)),
    );
    if (!this.incident || this.incident.id !== i.id) return;
    devices.forEach((d, k) => this.readings.byDevice.set(d, answers[k]));
    this.renderCharts();
  }

  renderEvidence() {
    const i = this.incident;
    this.renderCharts();
    this.loadReadings();
    this.$("p-evidence").replaceChildren(
      ...[...i.evidence].reverse().map((e) =>
        el(
          "li",
          {},
          el("span", { class: "t-time" }, clockTime(e.ts)),
          el("span", { class: "t-dev" }, e.device_id),
          ` ${e.metric} = ${number(e.value)} · ${e.signal} (${e.detector}, score ${number(e.score)})`,
          el("span", { class: "t-why" }, e.reason),
        ),
      ),
    );
  }

  async loadHistory() {
    const id = this.incident.id;
    const list = this.$("p-audit");
    try {
      const history = await getOptional(`/api/v1/incidents/${enc(id)}/history`);
      if (!this.incident || this.incident.id !== id) return;
      if (history === null) {
        list.replaceChildren(el("li", {}, "No audit trail on this server."));
        return;
      }
      const rows = Array.isArray(history) ? history : history.history || history.transitions || [];
      list.replaceChildren(
        ...(rows.length ? [...rows].reverse() : [null]).map((t) =>
          t
            ? el(
                "li",
                {},
                el("span", { class: "t-time" }, clockTime(t.at)),
                el("span", { class: "t-dev" }, t.actor),
                ` ${titleCase(t.from)} → ${titleCase(t.to)}`,
                t.reason ? el("span", { class: "t-why" }, t.reason) : null,
              )
            : el("li", {}, "No lifecycle changes yet."),
        ),
      );
    } catch (e) {
      list.replaceChildren(el("li", {}, e instanceof ApiError ? e.describe() : String(e)));
    }
  }

  note(message) {
    const p = this.$("p-note");
    p.textContent = message || "";
    p.hidden = !message;
  }

  error(message) {
    const p = this.$("p-error");
    p.textContent = message || "";
    p.hidden = !message;
  }

  // Each action is one POST; a refusal (4xx) is shown as the server worded it.
  async act(action, button) {
    const i = this.incident;
    if (!i) return;
    const id = enc(i.id);
    const requests = {
      ack: () => post(`/api/v1/incidents/${id}/ack`),
      resolve: () => post(`/api/v1/incidents/${id}/resolve`),
      dispatch: () => post(`/api/v1/incidents/${id}/dispatch`),
      // Silences this kind of incident around this place for an hour (e.g. planned works).
      silence: () =>
        post("/api/v1/silences", {
          kind: i.kind,
          area: { center: i.location, radius_m: SILENCE_RADIUS_M },
          duration_secs: 3600,
          reason: `silenced from the command centre at incident ${i.id}`,
        }),
    };
    this.error(null);
    this.note(null);
    button.disabled = true;
    try {
      const result = await requests[action]();
      this.note(noteFor(action, result));
      // Lifecycle routes answer with the incident; others (silence) do not: re-read it.
      const updated = result && result.id === i.id && result.status ? result : await get(`/api/v1/incidents/${id}`);
      this.cb.onChanged(updated);
    } catch (e) {
      this.error(`${titleCase(action)} failed. ${e instanceof ApiError ? e.describe() : String(e)}`);
      this.renderActions();
    }
  }
}

// What a successful action did, when the incident itself does not show it.
function noteFor(action, result) {
  if (action === "dispatch" && Array.isArray(result)) {
    return result.length
      ? `Dispatched ${result.map((d) => d.crew_id).filter(Boolean).join(", ") || "a crew"}.`
      : "No crew available yet: the dispatch is escalated.";
  }
  if (action === "silence" && result && result.id) {
    return `Silence ${result.id} set for 1 h within ${SILENCE_RADIUS_M} m.`;
  }
  return null;
}
