//! Profile topic filters (`city/traffic/cameras/{device_id}/stats`), compiled into segment lists
//! once at load time so matching a message's topic is a walk over `/`-separated slices with no
//! allocation except the captured id.
//!
//! A filter is MQTT filter syntax plus one placeholder segment, `{device_id}` (or `{crew_id}` for
//! crew tablets), that matches one level like `+` and captures it as the sender's id.

use std::fmt;

/// One level of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// Must equal the topic level.
    Lit(Box<str>),
    /// `{device_id}` / `{crew_id}`: any non-empty level, captured.
    Id,
    /// `+`: any one level.
    Plus,
    /// `#`: any number of remaining levels (last segment only).
    Hash,
}

/// A compiled topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicFilter {
    segs: Vec<Seg>,
    text: String,
}

/// Placeholders that name the sender's id segment.
const ID_PLACEHOLDERS: [&str; 2] = ["{device_id}", "{crew_id}"];

impl TopicFilter {
    /// Compiles `text`; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<TopicFilter, String> {
        if text.is_empty() {
            return Err("empty topic filter".to_string());
        }
        let levels: Vec<&str> = text.split('/').collect();
        let mut segs = Vec::with_capacity(levels.len());
        for (i, level) in levels.iter().enumerate() {
            let seg = match *level {
                l if ID_PLACEHOLDERS.contains(&l) => Seg::Id,
                "+" => Seg::Plus,
                "#" if i + 1 == levels.len() => Seg::Hash,
                "#" => return Err("'#' must be the last level".to_string()),
                l if l.contains(['+', '#', '{', '}']) => {
                    return Err(format!(
                        "level {l:?}: wildcards and placeholders must fill a whole level \
                         (placeholders: {{device_id}}, {{crew_id}})"
                    ))
                }
                l => Seg::Lit(l.into()),
            };
            segs.push(seg);
        }
        match segs.iter().filter(|s| **s == Seg::Id).count() {
            1 => Ok(TopicFilter {
                segs,
                text: text.to_string(),
            }),
            0 => Err("topic filter has no {device_id} (or {crew_id}) level".to_string()),
            _ => Err("topic filter has more than one id placeholder".to_string()),
        }
    }

    /// The MQTT subscription for this filter (placeholder replaced by `+`).
    pub(crate) fn subscription(&self) -> String {
        let mut s = String::with_capacity(self.text.len());
        for (i, seg) in self.segs.iter().enumerate() {
            if i > 0 {
                s.push('/');
            }
            s.push_str(match seg {
                Seg::Lit(l) => l,
                Seg::Id | Seg::Plus => "+",
                Seg::Hash => "#",
            });
        }
        s
    }

    /// If `topic` matches, the captured id level.
    pub(crate) fn matches<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let mut levels = topic.split('/');
        let mut id = None;
        for seg in &self.segs {
            if *seg == Seg::Hash {
                return id;
            }
            let level = levels.next()?;
            match seg {
                Seg::Lit(l) if **l != *level => return None,
                Seg::Id if level.is_empty() => return None,
                Seg::Id => id = Some(level),
                _ => {}
            }
        }
        if levels.next().is_some() {
            return None;
        }
        id
    }

    /// Number of literal levels: when several filters match a topic the one with most literal
    /// levels wins (the more specific claim).
    pub(crate) fn literal_levels(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| matches!(s, Seg::Lit(_)))
            .count()
    }

    /// Number of literal levels before the first non-literal one: among equally literal filters
    /// the one with the longer fixed prefix wins (topics read from the left).
    pub(crate) fn literal_prefix(&self) -> usize {
        self.segs
            .iter()
            .take_while(|s| matches!(s, Seg::Lit(_)))
            .count()
    }

    /// Whether some topic matches both filters, assuming a device id never equals a fixed level
    /// of another filter. The contract itself needs that assumption: `city/env/{id}/senml` and
    /// `city/env/vendor-b/{id}` would otherwise both claim `city/env/vendor-b/senml`.
    pub(crate) fn overlaps(&self, other: &TopicFilter) -> bool {
        let (a, b) = (&self.segs, &other.segs);
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(Seg::Hash), _) | (_, Some(Seg::Hash)) => return true,
                (Some(Seg::Lit(x)), Some(Seg::Lit(y))) if x != y => return false,
                (Some(Seg::Lit(_)), Some(Seg::Id)) | (Some(Seg::Id), Some(Seg::Lit(_))) => {
                    return false
                }
                (Some(_), Some(_)) => {}
                // One filter ended: only a following `#` (handled above) could still match.
                _ => return false,
            }
        }
        true
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn matches_and_captures_the_id() {
        let stats = f("city/traffic/cameras/{device_id}/stats");
        assert_eq!(
            stats.matches("city/traffic/cameras/TC-0042/stats"),
            Some("TC-0042")
        );
        assert_eq!(stats.matches("city/traffic/cameras/TC-0042/events"), None);
        assert_eq!(stats.matches("city/traffic/cameras/TC-0042/stats/x"), None);
        assert_eq!(stats.matches("city/traffic/cameras/TC-0042"), None);
        assert_eq!(
            stats.matches("city/traffic/cameras//stats"),
            None,
            "empty id"
        );
        let hash = f("city/{crew_id}/#");
        assert_eq!(hash.matches("city/W-07/a/b"), Some("W-07"));
        assert_eq!(stats.subscription(), "city/traffic/cameras/+/stats");
    }

    #[test]
    fn rejects_filters_without_a_single_whole_level_placeholder() {
        for bad in [
            "",
            "city/env/senml",
            "a/{device_id}/{crew_id}",
            "a/x{device_id}",
            "a/#/b",
            "a/b+",
        ] {
            assert!(
                TopicFilter::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn overlap_detection() {
        let senml = f("city/env/{device_id}/senml");
        let vendor_b = f("city/env/vendor-b/{device_id}");
        assert!(
            !senml.overlaps(&vendor_b),
            "an id never equals a fixed level"
        );
        assert!(
            senml.overlaps(&f("city/env/{device_id}/senml")),
            "same filter"
        );
        assert!(senml.overlaps(&f("city/+/{device_id}/+")));
        assert!(senml.overlaps(&f("city/env/{device_id}/#")));
        assert!(!senml.overlaps(&f("city/water/{device_id}/senml")));
        assert!(
            !f("a/{device_id}").overlaps(&f("a/{device_id}/b")),
            "different lengths"
        );
        assert_eq!(
            (vendor_b.literal_levels(), vendor_b.literal_prefix()),
            (3, 3)
        );
        assert_eq!((senml.literal_levels(), senml.literal_prefix()), (3, 2));
    }
}
