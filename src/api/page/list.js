// The live incident list: active before resolved, then most severe, then newest; filtered by
// department and kind. Rows are rebuilt from the state on every change (a few hundred at most).

import { SEVERITY_COLOUR, SEVERITY_RANK, isActive, titleCase, age, el, sevBadge, statusBadge, deptBadge } from "./format.js";

export function sortIncidents(list) {
  return [...list].sort(
    (a, b) =>
      isActive(b) - isActive(a) ||
      SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
      new Date(b.updated_at) - new Date(a.updated_at) ||
      a.id.localeCompare(b.id),
  );
}

export class IncidentList {
  constructor({ list, empty, dept, kind, resolved }, onSelect) {
    Object.assign(this, { listEl: list, emptyEl: empty, deptEl: dept, kindEl: kind, resolvedEl: resolved, onSelect });
    this.seen = null; // ids already shown once: new ones flash
    this.incidents = [];
    this.selected = null;
    for (const f of [dept, kind, resolved]) f.addEventListener("change", () => this.render());
  }

  update(incidents, selected) {
    this.incidents = incidents;
    this.selected = selected;
    this.refreshOptions(this.deptEl, incidents.flatMap((i) => i.departments), "All departments");
    this.refreshOptions(this.kindEl, incidents.map((i) => i.kind), "All kinds");
    this.render();
  }

  // Options follow the data, keeping the operator's current choice even if it has no rows now.
  refreshOptions(select, values, allLabel) {
    const current = select.value;
    const wanted = [...new Set(values.concat(current ? [current] : []))].sort();
    const have = [...select.options].slice(1).map((o) => o.value);
    if (wanted.join("\n") === have.join("\n")) return;
    select.replaceChildren(el("option", { value: "" }, allLabel), ...wanted.map((v) => el("option", { value: v }, titleCase(v))));
    select.value = current;
  }

  visible() {
    const dept = this.deptEl.value, kind = this.kindEl.value, showDone = this.resolvedEl.checked;
    return sortIncidents(
      this.incidents.filter(
        (i) => (!dept || i.departments.includes(dept)) && (!kind || i.kind === kind) && (showDone || isActive(i)),
      ),
    );
  }

  render() {
    const rows = this.visible();
    const firstRender = this.seen === null;
    this.seen = this.seen || new Set();
    const now = Date.now();
    this.listEl.replaceChildren(
      ...rows.map((i) => {
        const fresh = !firstRender && !this.seen.has(i.id);
        this.seen.add(i.id);
        const classes = ["row", isActive(i) ? "" : "resolved", i.id === this.selected ? "selected" : "", fresh ? "fresh" : ""];
        return el(
          "li",
          {
            class: classes.filter(Boolean).join(" "),
            dataset: { incidentId: i.id, status: i.status },
            tabindex: 0,
            onclick: () => this.onSelect(i.id),
            onkeydown: (e) => e.key === "Enter" && this.onSelect(i.id),
          },
          el("span", { class: "bar", style: { background: SEVERITY_COLOUR[i.severity] } }),
          el("span", { class: "kind" }, titleCase(i.kind)),
          el("span", { class: "age", title: i.opened_at }, age(i.opened_at, now)),
          el(
            "span",
            { class: "line2" },
            sevBadge(i.severity),
            statusBadge(i.status),
            ...i.departments.map(deptBadge),
            `${i.evidence.length} evidence`,
          ),
        );
      }),
    );
    this.emptyEl.hidden = rows.length > 0;
  }
}
