//! Validation of one profile and its compilation into [`super::compiled`], the form the decoder
//! runs. The checks shared by every decoder kind live here; per-kind ones in [`super::decoders`].
//!
//! Everything that can be checked without a payload is checked here, so decoding never meets a
//! config surprise; every error names the field path (`messages[1].decode.json.metrics.x.unit`).

use std::collections::BTreeMap;

use super::compiled::*;
use super::decoders::decoder;
use super::path::{FieldPath, PathSpec};
use super::spec::*;
use super::topic::TopicFilter;
use crate::config::{line_of_field, ConfigError};
use crate::ingest::units::{self, Linear};

/// Where a profile came from, so errors can name the file and line.
pub(super) struct Source<'a> {
    /// File name (or `<profile NAME>` for profiles built in code).
    pub(super) file: &'a str,
    /// File text, when there is one, to find lines in.
    pub(super) text: Option<&'a str>,
}

impl Source<'_> {
    /// An error at `field`; a field the file does not spell out (a missing or defaulted key) is
    /// placed on the line of its nearest written parent.
    pub(super) fn err(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let line = self.text.and_then(|text| {
            let mut f = field;
            loop {
                if let Some(line) = line_of_field(text, f) {
                    return Some(line);
                }
                f = &f[..f.rfind(['.', '['])?];
            }
        });
        ConfigError::new(self.file, line, field, message)
    }
}

/// Parses `+08:00`, `-0530`, `Z` into seconds east of UTC.
fn parse_utc_offset(s: &str) -> Option<i32> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// Collects errors while compiling one profile.
pub(super) struct Ctx<'a> {
    src: &'a Source<'a>,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(self.src.err(field, message));
    }

    pub(super) fn one_path(&mut self, field: &str, text: &str) -> Option<FieldPath> {
        match PathSpec::parse(text) {
            Ok(PathSpec::One(p)) => Some(p),
            Ok(PathSpec::Each { .. }) => {
                self.err(field, format!("{text:?}: [*] is not allowed here"));
                None
            }
            Err(e) => {
                self.err(field, format!("bad field path {text:?}: {e}"));
                None
            }
        }
    }

    pub(super) fn range(&mut self, field: &str, range: Option<[f64; 2]>) -> Option<(f64, f64)> {
        let [min, max] = range?;
        if min.is_nan() || max.is_nan() {
            self.err(field, "valid_range bounds must be numbers");
        } else if min > max {
            self.err(field, format!("min {min} > max {max}"));
        }
        Some((min, max))
    }

    /// Source unit → canonical unit, after `scale`.
    pub(super) fn conversion(
        &mut self,
        at: &str,
        metric: &str,
        m: &MetricSpec,
    ) -> Option<(Linear, String)> {
        let canonical = m.canonical_unit.clone().unwrap_or_else(|| m.unit.clone());
        let scale = m.scale.unwrap_or(1.0);
        if !scale.is_finite() || scale == 0.0 {
            self.err(
                &format!("{at}.scale"),
                format!("scale must be finite and non-zero, got {scale}"),
            );
        }
        // Name the key the file actually wrote: a defaulted canonical unit is the `unit` line.
        for (unit, key) in [(&m.unit, "unit"), (&canonical, "canonical_unit")] {
            if !units::is_known_unit(unit) {
                let e = units::UnitError::UnknownUnit(unit.clone());
                self.err(&format!("{at}.{key}"), e.to_string());
                return None;
            }
        }
        match units::conversion(metric, &m.unit, &canonical) {
            Ok(l) => Some((l.after_scale(scale), canonical)),
            Err(e) => {
                self.err(&format!("{at}.unit"), e.to_string());
                None
            }
        }
    }

    pub(super) fn metric_name(&mut self, at: &str, metric: &str) {
        if !valid_metric_name(metric) {
            self.err(
                at,
                format!("metric name {metric:?} must be non-empty [a-z0-9_.]"),
            );
        }
    }

    /// A JSON metric; `array_samples`: the path must name an array of samples (batch).
    pub(super) fn value(
        &mut self,
        at: &str,
        metric: &str,
        m: &MetricSpec,
        kind: ValueKind,
    ) -> Option<ValueSpec> {
        self.metric_name(at, metric);
        let field_at = format!("{at}.field");
        let path = match PathSpec::parse(&m.field) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(&field_at, format!("bad field path {:?}: {e}", m.field));
                None
            }
        };
        let conv = self.conversion(at, metric, m);
        let unit_field = m
            .unit_field
            .as_ref()
            .map(|u| self.one_path(&format!("{at}.unit_field"), u));
        let path = path?;
        match (kind, path.is_each(), m.aggregate) {
            (ValueKind::Json, true, None) => {
                self.err(&format!("{at}.aggregate"), "a [*] path needs an aggregate");
            }
            (ValueKind::Json, false, Some(_)) => {
                self.err(
                    &format!("{at}.aggregate"),
                    "aggregate needs a [*] path in `field`",
                );
            }
            (ValueKind::Samples | ValueKind::Extra, true, _) => {
                self.err(&field_at, "[*] is not allowed here");
            }
            (ValueKind::Samples | ValueKind::Extra, _, Some(_)) => {
                self.err(
                    &format!("{at}.aggregate"),
                    "aggregate is only for json [*] paths",
                );
            }
            _ => {}
        }
        let weight = self.weight(at, &path, m);
        let (convert, canonical_unit) = conv?;
        let unit_field = match unit_field {
            Some(None) => return None,
            Some(p) => p,
            None => None,
        };
        Some(ValueSpec {
            metric: metric.to_string(),
            path,
            aggregate: m.aggregate,
            weight,
            unit_field,
            convert,
            scale: m.scale.unwrap_or(1.0),
            canonical_unit,
            optional: m.optional,
        })
    }

    fn weight(&mut self, at: &str, path: &PathSpec, m: &MetricSpec) -> Option<FieldPath> {
        let at = format!("{at}.weight");
        let weighted = m.aggregate == Some(Aggregate::WeightedMean);
        let Some(w) = &m.weight else {
            if weighted {
                self.err(&at, "weighted_mean needs a weight path");
            }
            return None;
        };
        if !weighted {
            self.err(&at, "weight is only used by aggregate: weighted_mean");
            return None;
        }
        match (PathSpec::parse(w), path) {
            (Ok(PathSpec::Each { array: wa, item }), PathSpec::Each { array, .. })
                if wa == *array =>
            {
                Some(item)
            }
            (Err(e), _) => {
                self.err(&at, format!("bad field path {w:?}: {e}"));
                None
            }
            _ => {
                self.err(
                    &at,
                    format!("{w:?} must be a [*] path over the same array as field"),
                );
                None
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueKind {
    Json,
    Samples,
    Extra,
}

/// Validates and compiles one profile, returning every problem found.
pub(super) fn compile(
    spec: DeviceProfile,
    src: &Source<'_>,
) -> Result<CompiledProfile, Vec<ConfigError>> {
    let mut cx = Ctx {
        src,
        errors: Vec::new(),
    };
    if spec.name.trim().is_empty() || spec.name.contains(char::is_whitespace) {
        cx.err(
            "name",
            format!(
                "profile name {:?} must be non-empty without spaces",
                spec.name
            ),
        );
    }
    if !(spec.interval_secs.is_finite() && spec.interval_secs > 0.0) {
        cx.err(
            "interval_secs",
            format!("must be > 0, got {}", spec.interval_secs),
        );
    }
    if spec.messages.is_empty() {
        cx.err("messages", "a profile needs at least one message");
    }
    let mut out = CompiledProfile {
        spec: spec.clone(),
        messages: Vec::new(),
        metrics: BTreeMap::new(),
        event_templates: Vec::new(),
    };
    for (i, msg) in spec.messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        if let Some(m) = message(&mut cx, &at, msg, &mut out) {
            for (j, earlier) in out.messages.iter().enumerate() {
                if earlier.filter.overlaps(&m.filter) {
                    cx.err(
                        &format!("{at}.topic"),
                        format!(
                            "{} overlaps messages[{j}].topic {}",
                            m.filter, earlier.filter
                        ),
                    );
                }
            }
            out.messages.push(m);
        }
    }
    if cx.errors.is_empty() {
        Ok(out)
    } else {
        Err(cx.errors)
    }
}

fn message(
    cx: &mut Ctx<'_>,
    at: &str,
    msg: &MessageSpec,
    out: &mut CompiledProfile,
) -> Option<CompiledMessage> {
    let filter = TopicFilter::parse(&msg.topic)
        .map_err(|e| cx.err(&format!("{at}.topic"), e))
        .ok();
    let is_senml = matches!(msg.decode, DecoderSpec::Senml(_));
    let mut ok = true;
    let payload_id = match &msg.payload_device_id {
        None => None,
        Some(PayloadDeviceId::Field(f)) => {
            let p = cx.one_path(&format!("{at}.payload_device_id.field"), f);
            ok &= p.is_some();
            p.map(PayloadId::Field)
        }
        Some(PayloadDeviceId::SenmlBn(_)) if !is_senml => {
            cx.err(
                &format!("{at}.payload_device_id"),
                "senml_bn needs the senml decoder",
            );
            None
        }
        Some(PayloadDeviceId::SenmlBn(b)) => Some(PayloadId::SenmlBn {
            prefix: b.strip_prefix.clone(),
            suffix: b.strip_suffix.clone(),
        }),
    };
    let timestamp = match (&msg.timestamp, is_senml) {
        (Some(_), true) => {
            cx.err(
                &format!("{at}.timestamp"),
                "senml takes its time from bt/t: remove timestamp",
            );
            None
        }
        (None, false) => {
            cx.err(&format!("{at}.timestamp"), "this decoder needs a timestamp");
            None
        }
        (None, true) => None,
        (Some(t), false) => {
            let t = time_spec(cx, &format!("{at}.timestamp"), t);
            ok &= t.is_some();
            t
        }
    };
    let decoder = decoder(cx, &format!("{at}.decode"), &msg.decode, out)?;
    ok.then_some(CompiledMessage {
        filter: filter?,
        payload_id,
        timestamp,
        decoder,
    })
}

fn time_spec(cx: &mut Ctx<'_>, at: &str, t: &TimestampSpec) -> Option<TimeSpec> {
    let path = cx.one_path(&format!("{at}.field"), &t.field);
    let utc_offset_secs = match &t.utc_offset {
        None => None,
        Some(_) if t.format != TimeFormat::Datetime => {
            cx.err(
                &format!("{at}.utc_offset"),
                "utc_offset is only for format: datetime",
            );
            None
        }
        Some(s) => {
            let parsed = parse_utc_offset(s);
            if parsed.is_none() {
                cx.err(
                    &format!("{at}.utc_offset"),
                    format!("{s:?} is not an offset like +08:00"),
                );
            }
            parsed
        }
    };
    Some(TimeSpec {
        path: path?,
        format: t.format,
        utc_offset_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+08:00"), Some(8 * 3600));
        assert_eq!(parse_utc_offset("-0530"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_utc_offset("Z"), Some(0));
        for bad in ["", "08:00", "+8", "+25:00", "+08:60", "+ab:cd"] {
            assert_eq!(parse_utc_offset(bad), None, "{bad:?}");
        }
    }
}
