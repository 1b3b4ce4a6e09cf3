//! Parsing for `tests/dashboards.rs`: the InfluxDB schema documented in `docs/influxdb.md`,
//! and the names a Flux query refers to.

use std::collections::{BTreeMap, BTreeSet};

use super::{is_ident, read, repo};

/// Measurements of `docs/influxdb.md`: `### \`name\`` headings, then `| tag | \`x\` |` and
/// `| field | \`y\` |` rows.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub(crate) tags: BTreeMap<String, BTreeSet<String>>,
    pub(crate) fields: BTreeMap<String, BTreeSet<String>>,
}

pub(crate) fn influx_schema() -> Schema {
    let doc = read(&repo().join("docs/influxdb.md"));
    let mut schema = Schema::default();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            current = between(h, '`', '`');
            if let Some(m) = &current {
                schema.tags.entry(m.clone()).or_default();
                schema.fields.entry(m.clone()).or_default();
            }
            continue;
        }
        let (Some(m), Some(rest)) = (&current, line.strip_prefix('|')) else {
            continue;
        };
        let cells: Vec<&str> = rest.split('|').map(str::trim).collect();
        let (Some(kind), Some(name)) = (
            cells.first(),
            cells.get(1).and_then(|c| between(c, '`', '`')),
        ) else {
            continue;
        };
        match *kind {
            "tag" => schema.tags.entry(m.clone()).or_default().insert(name),
            "field" => schema.fields.entry(m.clone()).or_default().insert(name),
            _ => false,
        };
    }
    // "Every point carries two extra tags, `org` and `bucket`" (the doc says so in prose).
    assert!(doc.contains("two extra tags, `org` and `bucket`"));
    for tags in schema.tags.values_mut() {
        tags.extend(["org".to_string(), "bucket".to_string()]);
    }
    for m in ["reading", "anomaly", "incident"] {
        assert!(
            !schema.fields.get(m).is_none_or(BTreeSet::is_empty),
            "docs/influxdb.md no longer documents `{m}`'s fields: {schema:?}"
        );
    }
    schema
}

pub(crate) fn between(s: &str, open: char, close: char) -> Option<String> {
    let start = s.find(open)? + open.len_utf8();
    let len = s[start..].find(close)?;
    Some(s[start..start + len].to_string())
}

/// Every string literal following `pattern` (e.g. `r._measurement == "`).
pub(crate) fn literals_after(query: &str, pattern: &str) -> Vec<String> {
    query
        .match_indices(pattern)
        .filter_map(|(i, _)| between(&query[i + pattern.len() - 1..], '"', '"'))
        .collect()
}

/// Tag names compared in a Flux predicate: `r.name ==`, `r.name =~`, `r.name !=`.
pub(crate) fn compared_tags(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in query.match_indices("r.") {
        if i > 0 && is_ident(query.as_bytes()[i - 1]) {
            continue;
        }
        let rest = &query[i + 2..];
        let len = rest.bytes().take_while(|b| is_ident(*b)).count();
        let after = rest[len..].trim_start();
        if len > 0 && ["==", "=~", "!="].iter().any(|op| after.starts_with(op)) {
            out.push(rest[..len].to_string());
        }
    }
    out
}

/// Names in `columns: [...]` and `rowKey: [...]` lists.
pub(crate) fn column_lists(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["columns: [", "rowKey: [", "columnKey: ["] {
        for (i, _) in query.match_indices(key) {
            let rest = &query[i + key.len()..];
            let list = &rest[..rest.find(']').unwrap_or(rest.len())];
            out.extend(list.split(',').filter_map(|s| between(s, '"', '"')));
        }
    }
    out
}
