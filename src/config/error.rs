//! The config error type (file + line + field + message) and the one YAML entry point.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

/// One problem in one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File the problem is in.
    pub file: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// Field path (`correlation.radius_m`, `metrics[2].unit`), or empty for the whole file.
    pub field: String,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl ConfigError {
    /// A new error.
    pub fn new(
        file: impl Into<String>,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    /// An error about `field` whose line is looked up in the file's `text`.
    pub fn at_field(file: &str, text: &str, field: &str, message: impl Into<String>) -> Self {
        ConfigError::new(file, line_of_field(text, field), field, message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All problems found while loading a set of files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// Parses YAML `text` (from `file`) into `T`; a syntax or type error names the file, line and the
/// field serde-saphyr reports. This is the only place the YAML crate is used.
pub fn load_yaml_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let name = file.display().to_string();
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let line = e.location().map(|l| l.line() as usize).filter(|l| *l > 0);
        let message = first_line(&e.to_string());
        ConfigError::new(name, line, field_from_message(&message), message)
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// serde reports unknown/missing fields as "unknown field `x`" / "missing field `x`": surface `x`.
fn field_from_message(msg: &str) -> String {
    for marker in ["unknown field `", "missing field `", "field `"] {
        if let Some(start) = msg.find(marker) {
            let rest = &msg[start + marker.len()..];
            if let Some(end) = rest.find('`') {
                return rest[..end].to_string();
            }
        }
    }
    String::new()
}

/// Best-effort 1-based line of a dotted field path (`correlation.radius_m`, `signals[1].metric`)
/// in YAML text: walks the path's keys in order, each searched after the previous one's line.
pub fn line_of_field(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut found = None;
    for part in field.split('.') {
        let (key, index) = match part.find('[') {
            Some(i) => (
                &part[..i],
                part[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part, None),
        };
        if key.is_empty() {
            continue;
        }
        let found_key = lines.iter().enumerate().skip(from).find_map(|(i, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            let t = t.trim_start_matches('{').trim_start();
            let inline = l.contains(&format!("{{{key}:")) || l.contains(&format!(", {key}:"));
            (t.starts_with(&format!("{key}:")) || t.starts_with(&format!("\"{key}\":")) || inline)
                .then_some(i)
        });
        // A key that is not found (a default, or written in a way we do not follow) reports
        // the line of the deepest part of the path that was found.
        let Some(pos) = found_key else { return found };
        from = pos + 1;
        found = Some(pos + 1);
        if let Some(idx) = index {
            // Skip to the idx-th list item after the key.
            let mut seen = 0usize;
            for (i, l) in lines.iter().enumerate().skip(from) {
                if l.trim_start().starts_with("- ") {
                    if seen == idx {
                        from = i;
                        found = Some(i + 1);
                        break;
                    }
                    seen += 1;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        radius_m: f64,
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let text = "name: x\nradius_m: 5\nradius: 7\n";
        let err = load_yaml_str::<Doc>(Path::new("p.yaml"), text).expect_err("must fail");
        assert_eq!(err.file, "p.yaml");
        assert_eq!(err.line, Some(3), "{err}");
        assert_eq!(err.field, "radius", "{err}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let text = "name: x\nradius_m: far\n";
        let err = load_yaml_str::<Doc>(Path::new("p.yaml"), text).expect_err("must fail");
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn line_of_nested_field_and_list_item() {
        let text = "kind: a\nsignals:\n  - name: one\n    metric: m1\n  - name: two\n    metric: m2\ncorrelation:\n  radius_m: 0\n";
        assert_eq!(line_of_field(text, "correlation.radius_m"), Some(8));
        assert_eq!(line_of_field(text, "signals[1].metric"), Some(6));
        assert_eq!(line_of_field(text, "nothing.here"), None);
        assert_eq!(
            line_of_field(text, "correlation.missing"),
            Some(7),
            "falls back to the parent"
        );
        let flow = "incident:\n  trigger:\n    - all:\n        - {signals: [a], min_devices: 0}\n";
        assert_eq!(
            line_of_field(flow, "incident.trigger[0].all[0].min_devices"),
            Some(4)
        );
    }
}
