//! JSON field paths as profiles write them (`ts`, `lanes[*].count`, `['PM2.5']`, `a.b[0]`),
//! compiled once at load time and evaluated against a `serde_json::Value` per message.
//!
//! Grammar: a path is a key followed by `.key`, `[N]`, `[*]` or `['key']` / `["key"]` parts; the
//! quoted form is for keys containing dots or brackets (vendor B's `PM2.5`). At most one `[*]`:
//! it splits the path into the array and the path of each item, which is all aggregation needs.

use std::fmt;

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Object member.
    Key(Box<str>),
    /// Array element.
    Index(usize),
}

/// A path without `[*]`: a walk from a value to one value inside it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FieldPath {
    steps: Vec<Step>,
    /// The path as written (relative paths of items are shown with their array prefix).
    text: String,
}

/// A compiled path: either one value, or an array whose items each yield one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathSpec {
    /// `a.b[0]`.
    One(FieldPath),
    /// `array[*].item`.
    Each {
        /// Path to the array.
        array: FieldPath,
        /// Path inside each item (may be empty: the item itself).
        item: FieldPath,
    },
}

/// Why a path did not lead to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss {
    /// A key or index is not there.
    Missing,
    /// A step needed an object or array and found `found` (a JSON type name).
    NotContainer {
        /// Prefix of the path that holds the wrong type.
        at: String,
        /// JSON type found there.
        found: &'static str,
    },
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::Missing => f.write_str("missing"),
            Miss::NotContainer { at, found } => write!(f, "{at} is a {found}, not an object/array"),
        }
    }
}

/// JSON type name for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl FieldPath {
    /// The path as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Walks the path from `root`.
    pub(crate) fn get<'v>(&self, root: &'v Value) -> Result<&'v Value, Miss> {
        let mut cur = root;
        for (i, step) in self.steps.iter().enumerate() {
            let next = match (step, cur) {
                (Step::Key(k), Value::Object(m)) => m.get(&**k),
                (Step::Index(n), Value::Array(a)) => a.get(*n),
                (_, Value::Object(_) | Value::Array(_)) => None,
                (_, other) => {
                    return Err(Miss::NotContainer {
                        at: self.prefix_text(i),
                        found: json_type(other),
                    })
                }
            };
            cur = next.ok_or(Miss::Missing)?;
        }
        Ok(cur)
    }

    /// Text of the first `n` steps (only built on the error path).
    fn prefix_text(&self, n: usize) -> String {
        let mut s = String::new();
        for step in &self.steps[..n] {
            push_step(&mut s, step);
        }
        if s.is_empty() {
            s.push_str("payload");
        }
        s
    }
}

fn push_step(s: &mut String, step: &Step) {
    match step {
        Step::Key(k)
            if k.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
        {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(k);
        }
        Step::Key(k) => {
            s.push_str("['");
            s.push_str(k);
            s.push_str("']");
        }
        Step::Index(n) => {
            s.push('[');
            s.push_str(&n.to_string());
            s.push(']');
        }
    }
}

impl PathSpec {
    /// Compiles `text`; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<PathSpec, String> {
        let mut before: Vec<Step> = Vec::new();
        let mut after: Vec<Step> = Vec::new();
        let mut seen_each = false;
        let mut chars = text.char_indices().peekable();
        let mut first = true;
        if text.is_empty() {
            return Err("empty path".to_string());
        }
        while let Some(&(pos, c)) = chars.peek() {
            let steps = if seen_each { &mut after } else { &mut before };
            match c {
                '[' => {
                    chars.next();
                    let close = text[pos..]
                        .find(']')
                        .map(|i| pos + i)
                        .ok_or_else(|| format!("unclosed '[' at {pos}"))?;
                    let inner = &text[pos + 1..close];
                    if inner == "*" {
                        if seen_each {
                            return Err("at most one [*] per path".to_string());
                        }
                        seen_each = true;
                    } else if let Some(q) = quoted(inner) {
                        if q.is_empty() {
                            return Err(format!("empty quoted key at {pos}"));
                        }
                        steps.push(Step::Key(q.into()));
                    } else {
                        let n = inner.parse::<usize>().map_err(|_| {
                            format!("bad index [{inner}] (use [N], [*] or ['key'])")
                        })?;
                        steps.push(Step::Index(n));
                    }
                    while chars.peek().is_some_and(|&(i, _)| i <= close) {
                        chars.next();
                    }
                }
                '.' if !first => {
                    chars.next();
                    let key = take_key(text, &mut chars);
                    if key.is_empty() {
                        return Err(format!("empty key after '.' at {pos}"));
                    }
                    steps.push(Step::Key(key.into()));
                }
                '.' => return Err("path starts with '.'".to_string()),
                _ if first => {
                    let key = take_key(text, &mut chars);
                    if key.is_empty() {
                        return Err(format!("unexpected {c:?} at {pos}"));
                    }
                    steps.push(Step::Key(key.into()));
                }
                _ => return Err(format!("unexpected {c:?} at {pos} (expected '.' or '[')")),
            }
            first = false;
        }
        let array = FieldPath {
            text: text_of(&before),
            steps: before,
        };
        if !seen_each {
            return Ok(PathSpec::One(array));
        }
        let item = FieldPath {
            text: text.to_string(),
            steps: after,
        };
        Ok(PathSpec::Each { array, item })
    }

    /// Whether the path has a `[*]`.
    pub(crate) fn is_each(&self) -> bool {
        matches!(self, PathSpec::Each { .. })
    }
}

fn text_of(steps: &[Step]) -> String {
    let mut s = String::new();
    for step in steps {
        push_step(&mut s, step);
    }
    s
}

fn quoted(inner: &str) -> Option<&str> {
    let b = inner.as_bytes();
    (b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0])
        .then(|| &inner[1..inner.len() - 1])
}

fn take_key<'t>(
    text: &'t str,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'t>>,
) -> &'t str {
    let start = chars.peek().map_or(text.len(), |&(i, _)| i);
    let mut end = start;
    while let Some(&(i, c)) = chars.peek() {
        if c == '.' || c == '[' || c == ']' {
            break;
        }
        end = i + c.len_utf8();
        chars.next();
    }
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(p: &str) -> FieldPath {
        match PathSpec::parse(p) {
            Ok(PathSpec::One(f)) => f,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn plain_nested_indexed_and_quoted_keys() {
        let v = json!({"ts": 1, "a": {"b": [10, {"c": 3}]}, "PM2.5": 35});
        assert_eq!(one("ts").get(&v), Ok(&json!(1)));
        assert_eq!(one("a.b[1].c").get(&v), Ok(&json!(3)));
        assert_eq!(one("['PM2.5']").get(&v), Ok(&json!(35)));
        assert_eq!(one("[\"PM2.5\"]").get(&v), Ok(&json!(35)));
        assert_eq!(one("a.x").get(&v), Err(Miss::Missing));
        assert_eq!(one("a.b[7]").get(&v), Err(Miss::Missing));
        let err = one("ts.x").get(&v).expect_err("ts is a number");
        assert_eq!(
            err,
            Miss::NotContainer {
                at: "ts".to_string(),
                found: "number"
            }
        );
    }

    #[test]
    fn each_splits_into_array_and_item() {
        let Ok(PathSpec::Each { array, item }) = PathSpec::parse("lanes[*].count") else {
            panic!("expected Each");
        };
        let v = json!({"lanes": [{"count": 12}, {"count": 9}]});
        let Ok(Value::Array(items)) = array.get(&v) else {
            panic!("array")
        };
        let counts: Vec<_> = items.iter().map(|i| item.get(i).cloned()).collect();
        assert_eq!(counts, vec![Ok(json!(12)), Ok(json!(9))]);
        assert_eq!(item.as_str(), "lanes[*].count");
        let Ok(PathSpec::Each { item, .. }) = PathSpec::parse("xs[*]") else {
            panic!("Each")
        };
        assert_eq!(
            item.get(&json!(5)),
            Ok(&json!(5)),
            "an empty item path is the item itself"
        );
    }

    #[test]
    fn bad_paths_are_rejected_with_a_reason() {
        for bad in [
            "",
            ".a",
            "a..b",
            "a[",
            "a[x]",
            "a[*][*]",
            "a[*].b[*]",
            "a]",
            "a.['']",
        ] {
            assert!(PathSpec::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
