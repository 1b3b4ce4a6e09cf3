//! The Grafana dashboards in `dashboards/` reference only what exists: every `citybrain_*`
//! metric in a Prometheus expression is one citybrain exports (`METRIC_NAMES`, histogram
//! suffixes resolved against the real exposition), every measurement, field and tag in a Flux
//! query is one the InfluxDB sink documents in `docs/influxdb.md`, and every datasource uid is
//! one Grafana is provisioned with. The platform dashboard also shows every metric there is, so
//! a new metric without a panel fails here. (PromQL syntax is checked against a real Prometheus
//! in `tests/prometheus_scrape.rs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use citybrain::telemetry::{Metrics, METRIC_NAMES};
use flux::{column_lists, compared_tags, influx_schema, literals_after};
use serde_json::Value;

#[path = "dashboards/flux.rs"]
mod flux;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every dashboard JSON file, by file name.
fn dashboards() -> BTreeMap<String, Value> {
    let dir = repo().join("dashboards");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let value: Value = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        out.insert(name.expect("file name"), value);
    }
    assert!(
        out.len() >= 2,
        "expected the platform and city dashboards: {out:?}"
    );
    out
}

/// Panels, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels array") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter());
        }
    }
    out
}

/// (datasource type, expression) of every query in a dashboard: panel targets and template
/// variables.
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let ds_type = |v: &Value, fallback: &Value| {
        v["datasource"]["type"]
            .as_str()
            .or_else(|| fallback["datasource"]["type"].as_str())
            .unwrap_or("")
            .to_string()
    };
    for p in panels(dashboard) {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            let text = t["expr"].as_str().or_else(|| t["query"].as_str());
            let text = text.unwrap_or_else(|| panic!("panel {title:?}: a target without a query"));
            out.push((title.clone(), ds_type(t, p), text.to_string()));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["query"].as_str() {
            let name = format!("variable {}", v["name"].as_str().unwrap_or("?"));
            out.push((name, ds_type(v, v), q.to_string()));
        }
    }
    out
}

/// `citybrain_*` identifiers in a PromQL expression.
fn citybrain_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("citybrain_") {
        let start = i + pos;
        let boundary = start == 0 || !is_ident(bytes[start - 1]);
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        if boundary {
            out.push(expr[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Names declared as histograms in the real exposition.
fn histograms() -> BTreeSet<String> {
    Metrics::new()
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" histogram"))
        .map(str::to_string)
        .collect()
}

/// Resolves a series name to the metric family it belongs to, or explains why it is unknown.
fn family(name: &str, histograms: &BTreeSet<String>) -> Result<String, String> {
    if METRIC_NAMES.contains(&name) {
        if histograms.contains(name) {
            return Err(format!(
                "{name} is a histogram: query {name}_bucket, _sum or _count"
            ));
        }
        return Ok(name.to_string());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if histograms.contains(base) {
                return Ok(base.to_string());
            }
        }
    }
    Err(format!("{name} is not a metric citybrain exports"))
}

#[test]
fn prometheus_panels_reference_only_exported_metrics_and_the_platform_shows_all() {
    let histograms = histograms();
    assert!(histograms.contains("citybrain_dataflow_latency_seconds"));
    let mut problems = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (file, dash) in dashboards() {
        for (panel, ds, expr) in queries(&dash) {
            if ds != "prometheus" {
                continue;
            }
            let names = citybrain_names(&expr);
            if names.is_empty() && !expr.contains("up{") {
                problems.push(format!("{file}: {panel}: no citybrain metric in {expr:?}"));
            }
            for name in names {
                match family(&name, &histograms) {
                    Ok(f) => {
                        used.insert(f);
                    }
                    Err(why) => problems.push(format!("{file}: {panel}: {why}")),
                }
            }
            if expr.contains("histogram_quantile") && !expr.contains("_bucket[") {
                problems.push(format!("{file}: {panel}: quantile without _bucket: {expr}"));
            }
        }
    }
    for name in METRIC_NAMES {
        if !used.contains(*name) {
            problems.push(format!("{name} has no panel in any dashboard"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_rejects_what_it_should() {
    // The test above must be able to fail: unknown names, bare histograms, invented suffixes.
    let h = histograms();
    assert!(family("citybrain_messages_total", &h).is_ok());
    assert!(family("citybrain_dataflow_latency_seconds_bucket", &h).is_ok());
    assert!(family("citybrain_dataflow_latency_seconds", &h).is_err());
    assert!(family("citybrain_messages_total_count", &h).is_err());
    assert!(family("citybrain_no_such_metric", &h).is_err());
    assert_eq!(
        citybrain_names("sum(rate(citybrain_a_total[5m])) / x_citybrain_b"),
        vec!["citybrain_a_total".to_string()]
    );
}

/// The bucket citybrain writes to in the compose stack.
fn configured_bucket() -> String {
    let cfg: Value = serde_saphyr::from_str(&read(&repo().join("deploy/citybrain/citybrain.yaml")))
        .expect("deploy/citybrain/citybrain.yaml parses");
    cfg["influx"]["bucket"]
        .as_str()
        .expect("influx.bucket")
        .to_string()
}

#[test]
fn flux_panels_reference_only_documented_measurements_fields_and_tags() {
    let schema = influx_schema();
    let bucket = configured_bucket();
    let system = [
        "_time",
        "_value",
        "_field",
        "_measurement",
        "_start",
        "_stop",
    ];
    let mut problems = Vec::new();
    let mut flux_queries = 0;
    for (file, dash) in dashboards() {
        for (panel, ds, query) in queries(&dash) {
            if ds != "influxdb" {
                continue;
            }
            flux_queries += 1;
            let at = format!("{file}: {panel}");
            for b in literals_after(&query, "bucket: \"") {
                if b != bucket {
                    problems.push(format!(
                        "{at}: bucket {b:?}, citybrain writes to {bucket:?}"
                    ));
                }
            }
            let measurements = literals_after(&query, "r._measurement == \"");
            if measurements.is_empty() {
                problems.push(format!("{at}: no r._measurement filter"));
            }
            let mut tags = BTreeSet::new();
            let mut fields = BTreeSet::new();
            for m in &measurements {
                match (schema.tags.get(m), schema.fields.get(m)) {
                    (Some(t), Some(f)) => {
                        tags.extend(t.iter().cloned());
                        fields.extend(f.iter().cloned());
                    }
                    _ => problems.push(format!("{at}: measurement {m:?} is not documented")),
                }
            }
            for f in literals_after(&query, "r._field == \"") {
                if !fields.contains(&f) {
                    problems.push(format!(
                        "{at}: field {f:?} is not one of {measurements:?}'s"
                    ));
                }
            }
            let tag_args = literals_after(&query, "tag: \"");
            for t in compared_tags(&query).into_iter().chain(tag_args) {
                if !t.starts_with('_') && !tags.contains(&t) {
                    problems.push(format!("{at}: tag {t:?} is not one of {measurements:?}'s"));
                }
            }
            for c in column_lists(&query) {
                let known =
                    system.contains(&c.as_str()) || tags.contains(&c) || fields.contains(&c);
                if !known {
                    problems.push(format!("{at}: column {c:?} is neither a tag nor a field"));
                }
            }
        }
    }
    assert!(flux_queries >= 5, "the city dashboard queries InfluxDB");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_flux_parsers_find_what_they_should() {
    let q = r#"from(bucket: "b") |> filter(fn: (r) => r._measurement == "reading" and r.device_id =~ /x/)
        |> group(columns: ["department", "_field"]) |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")"#;
    assert_eq!(literals_after(q, "r._measurement == \""), vec!["reading"]);
    assert_eq!(compared_tags(q), vec!["_measurement", "device_id"]);
    assert_eq!(
        column_lists(q),
        vec!["department", "_field", "_time", "_field"]
    );
    let schema = influx_schema();
    assert!(schema.tags["reading"].contains("device_id"));
    assert!(schema.fields["anomaly"].contains("score"));
    assert!(!schema.fields["reading"].contains("score"));
}

/// Datasource uids Grafana is provisioned with.
fn provisioned_uids() -> BTreeMap<String, String> {
    let path = repo().join("deploy/grafana/provisioning/datasources/datasources.yaml");
    let v: Value = serde_saphyr::from_str(&read(&path)).expect("datasources.yaml parses");
    v["datasources"]
        .as_array()
        .expect("datasources list")
        .iter()
        .map(|d| {
            let uid = d["uid"].as_str().expect("every datasource has a uid");
            (
                uid.to_string(),
                d["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn dashboards_are_well_formed_and_use_provisioned_datasources() {
    let uids = provisioned_uids();
    let mut problems = Vec::new();
    let mut dashboard_uids = BTreeSet::new();
    for (file, dash) in dashboards() {
        let uid = dash["uid"].as_str().unwrap_or_default().to_string();
        if uid.is_empty() || !dashboard_uids.insert(uid.clone()) {
            problems.push(format!("{file}: missing or repeated dashboard uid {uid:?}"));
        }
        if dash["title"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{file}: no title"));
        }
        let mut ids = BTreeSet::new();
        for p in panels(&dash) {
            let title = p["title"].as_str().unwrap_or("?");
            if !p["id"].as_u64().is_some_and(|id| ids.insert(id)) {
                problems.push(format!("{file}: {title}: missing or repeated panel id"));
            }
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64(), g["w"].as_u64());
            if !matches!((x, w), (Some(x), Some(w)) if w > 0 && x + w <= 24)
                || g["h"].as_u64().is_none()
            {
                problems.push(format!(
                    "{file}: {title}: gridPos outside the 24 columns: {g}"
                ));
            }
            if p["type"] == "row" {
                continue;
            }
            let ds = &p["datasource"];
            match ds["uid"].as_str().and_then(|u| uids.get(u)) {
                Some(t) if Some(t.as_str()) == ds["type"].as_str() => {}
                _ => problems.push(format!(
                    "{file}: {title}: datasource {ds} is not provisioned"
                )),
            }
            if p["targets"].as_array().is_none_or(Vec::is_empty) {
                problems.push(format!("{file}: {title}: no queries"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
