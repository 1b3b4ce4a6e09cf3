//! Validation and compilation of each decoder kind (`json`, `json_event`, `senml`, `batch`,
//! `crew_status`, `crew_ack`), and the per-profile table of metrics they produce.

use super::compile::{Ctx, ValueKind};
use super::compiled::*;
use super::spec::*;
use super::MetricInfo;

pub(super) fn record_metric(
    cx: &mut Ctx<'_>,
    out: &mut CompiledProfile,
    at: &str,
    metric: &str,
    info: MetricInfo,
) {
    if let Some(prev) = out.metrics.get(metric) {
        if prev.unit != info.unit {
            cx.err(
                at,
                format!(
                    "{metric} is {} here but {} in another message",
                    info.unit, prev.unit
                ),
            );
        }
        return;
    }
    out.metrics.insert(metric.to_string(), info);
}

pub(super) fn decoder(
    cx: &mut Ctx<'_>,
    at: &str,
    d: &DecoderSpec,
    out: &mut CompiledProfile,
) -> Option<Decoder> {
    // The range is checked before the metric so a bad unit does not hide a bad range.
    let info = |v: &ValueSpec, valid_range| MetricInfo {
        unit: v.canonical_unit.clone(),
        valid_range,
    };
    match d {
        DecoderSpec::Json(j) => {
            let at = format!("{at}.json.metrics");
            if j.metrics.is_empty() {
                cx.err(&at, "no metrics");
            }
            let mut values = Vec::new();
            for (metric, m) in &j.metrics {
                let mat = format!("{at}.{metric}");
                let range = cx.range(&format!("{mat}.valid_range"), m.valid_range);
                if let Some(v) = cx.value(&mat, metric, m, ValueKind::Json) {
                    let i = info(&v, range);
                    record_metric(cx, out, &mat, metric, i);
                    values.push(v);
                }
            }
            Some(Decoder::Json(values))
        }
        DecoderSpec::Senml(s) => {
            let at = format!("{at}.senml.metrics");
            if s.metrics.is_empty() {
                cx.err(&at, "no metrics");
            }
            let mut out_metrics = Vec::new();
            for (metric, m) in &s.metrics {
                let mat = format!("{at}.{metric}");
                cx.metric_name(&mat, metric);
                if m.field.is_empty() {
                    cx.err(&format!("{mat}.field"), "empty SenML name");
                }
                for (set, name) in [
                    (m.aggregate.is_some(), "aggregate"),
                    (m.weight.is_some(), "weight"),
                    (m.unit_field.is_some(), "unit_field"),
                ] {
                    if set {
                        cx.err(
                            &format!("{mat}.{name}"),
                            format!("{name} is not used by senml"),
                        );
                    }
                }
                let valid_range = cx.range(&format!("{mat}.valid_range"), m.valid_range);
                if let Some((convert, canonical_unit)) = cx.conversion(&mat, metric, m) {
                    record_metric(
                        cx,
                        out,
                        &mat,
                        metric,
                        MetricInfo {
                            unit: canonical_unit.clone(),
                            valid_range,
                        },
                    );
                    out_metrics.push(SenmlMetric {
                        name: m.field.clone(),
                        metric: metric.clone(),
                        unit: m.unit.clone(),
                        convert,
                        scale: m.scale.unwrap_or(1.0),
                        canonical_unit,
                    });
                }
            }
            Some(Decoder::Senml(out_metrics))
        }
        DecoderSpec::JsonEvent(e) => event(cx, &format!("{at}.json_event"), e, out),
        DecoderSpec::Batch(b) => {
            let at = format!("{at}.batch");
            let dt = cx.one_path(&format!("{at}.dt_field"), &b.dt_field);
            let seq = b
                .seq_field
                .as_ref()
                .map(|s| cx.one_path(&format!("{at}.seq_field"), s));
            if b.samples.is_empty() {
                cx.err(&format!("{at}.samples"), "no sample arrays");
            }
            let mut lists = [Vec::new(), Vec::new()];
            for (k, (name, map)) in [("samples", &b.samples), ("extras", &b.extras)]
                .into_iter()
                .enumerate()
            {
                let kind = if k == 0 {
                    ValueKind::Samples
                } else {
                    ValueKind::Extra
                };
                for (metric, m) in map {
                    let mat = format!("{at}.{name}.{metric}");
                    let range = cx.range(&format!("{mat}.valid_range"), m.valid_range);
                    if let Some(v) = cx.value(&mat, metric, m, kind) {
                        let i = info(&v, range);
                        record_metric(cx, out, &mat, metric, i);
                        lists[k].push(v);
                    }
                }
            }
            let [samples, extras] = lists;
            let seq = match seq {
                Some(None) => return None,
                Some(p) => p,
                None => None,
            };
            Some(Decoder::Batch(BatchDecoder {
                dt: dt?,
                seq,
                samples,
                extras,
            }))
        }
        DecoderSpec::CrewStatus(c) => {
            let at = format!("{at}.crew_status");
            let lat = cx.one_path(&format!("{at}.lat_field"), &c.lat_field);
            let lon = cx.one_path(&format!("{at}.lon_field"), &c.lon_field);
            let state = cx.one_path(&format!("{at}.state_field"), &c.state_field);
            Some(Decoder::CrewStatus {
                lat: lat?,
                lon: lon?,
                state: state?,
            })
        }
        DecoderSpec::CrewAck(c) => {
            let at = format!("{at}.crew_ack");
            let incident = cx.one_path(&format!("{at}.incident_field"), &c.incident_field);
            let action = cx.one_path(&format!("{at}.action_field"), &c.action_field);
            Some(Decoder::CrewAck {
                incident: incident?,
                action: action?,
            })
        }
    }
}

fn event(cx: &mut Ctx<'_>, at: &str, e: &EventSpec, out: &mut CompiledProfile) -> Option<Decoder> {
    let type_path = cx.one_path(&format!("{at}.type_field"), &e.type_field);
    let value_path = cx.one_path(&format!("{at}.value_field"), &e.value_field);
    let (prefix, suffix) = match e.metric_template.split_once("{type}") {
        Some((p, s)) if !s.contains("{type}") && valid_metric_name(&format!("{p}x{s}")) => {
            (p.to_string(), s.to_string())
        }
        _ => {
            cx.err(
                &format!("{at}.metric_template"),
                format!(
                    "{:?} needs exactly one {{type}} in a [a-z0-9_.] name",
                    e.metric_template
                ),
            );
            (String::new(), String::new())
        }
    };
    if let Some(types) = &e.allowed_types {
        for t in types.iter().filter(|t| !valid_event_type(t)) {
            cx.err(
                &format!("{at}.allowed_types"),
                format!("event type {t:?} must be [a-z0-9_], at most 64 bytes"),
            );
        }
    }
    let as_metric = MetricSpec {
        field: e.value_field.clone(),
        unit: e.unit.clone(),
        canonical_unit: e.canonical_unit.clone(),
        scale: None,
        aggregate: None,
        weight: None,
        unit_field: None,
        valid_range: e.valid_range,
        optional: false,
    };
    let valid_range = cx.range(&format!("{at}.valid_range"), e.valid_range);
    let (convert, unit) = cx.conversion(at, &e.metric_template, &as_metric)?;
    let info = MetricInfo { unit, valid_range };
    match &e.allowed_types {
        Some(types) => {
            for t in types {
                record_metric(cx, out, at, &format!("{prefix}{t}{suffix}"), info.clone());
            }
        }
        None => out
            .event_templates
            .push((prefix.clone(), suffix.clone(), info)),
    }
    Some(Decoder::Event(EventDecoder {
        type_path: type_path?,
        value_path: value_path?,
        prefix,
        suffix,
        allowed: e.allowed_types.clone(),
        convert,
    }))
}
