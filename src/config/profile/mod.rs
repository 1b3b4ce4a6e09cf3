//! Device profiles: one YAML file per device model in `device-profiles/`, saying which topics the
//! model publishes on, where the sender's id and event time are, and how each payload becomes
//! readings in canonical metrics and units. A new device model of a known shape is a new file.
//!
//! [`ProfileSet`] owns the loaded, validated and compiled profiles: lookups for the detectors
//! (metric units, valid ranges, reporting intervals) and [`ProfileSet::match_topic`], which runs
//! for every message. The format itself is documented on the types in [`spec`]; decoding lives in
//! [`crate::ingest::decode`]; unit conversions in [`crate::ingest::units`].

use std::collections::BTreeMap;
use std::path::Path;

use super::{load_yaml_str, ConfigError, ConfigErrors};

mod compile;
pub(crate) mod compiled;
mod decoders;
pub(crate) mod path;
pub mod spec;
#[cfg(test)]
mod tests;
pub(crate) mod topic;

use compile::Source;
use compiled::{CompiledMessage, CompiledProfile};
pub use spec::*;
use topic::TopicFilter;

/// What a profile says about one canonical metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    /// Canonical unit (`kPa`, `ug/m3`).
    pub unit: String,
    /// Valid range `(min, max)` in the canonical unit, if the profile declares one.
    pub valid_range: Option<(f64, f64)>,
}

/// The profile and message a topic belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMatch<'a> {
    /// Profile name.
    pub profile: &'a str,
    /// Index into the profile's `messages`.
    pub message_index: usize,
    /// Id captured from the topic's `{device_id}` / `{crew_id}` level.
    pub device_id: Option<String>,
    /// Index of the profile in the set (saves a name lookup when decoding).
    pub(crate) profile_index: usize,
}

/// A topic filter with the message it routes to.
#[derive(Debug, Clone)]
struct Route {
    filter: TopicFilter,
    profile: usize,
    message: usize,
}

/// All loaded profiles, validated and compiled.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    /// Sorted by name.
    profiles: Vec<CompiledProfile>,
    /// Most specific filter first (most literal levels, then longest literal prefix), so a topic
    /// two filters accept goes to the stricter claim.
    routes: Vec<Route>,
}

impl ProfileSet {
    /// Loads every `*.yaml` / `*.yml` file in `dir` (in name order) and reports every problem in
    /// every file at once.
    pub fn load_dir(dir: &Path) -> Result<ProfileSet, ConfigErrors> {
        let dir_name = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ConfigError::new(&dir_name, None, "", format!("cannot read directory: {e}"))
        })?;
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ConfigError::new(dir_name, None, "", "no *.yaml profiles found").into());
        }
        let mut errors = Vec::new();
        let mut loaded = Vec::new();
        for file in &files {
            let name = file.display().to_string();
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(ConfigError::new(
                        name,
                        None,
                        "",
                        format!("cannot read: {e}"),
                    ));
                    continue;
                }
            };
            match load_yaml_str::<DeviceProfile>(file, &text) {
                Ok(spec) => loaded.push((name, Some(text), spec)),
                Err(e) => errors.push(e),
            }
        }
        Self::build(loaded, errors)
    }

    /// Builds a set from profiles made in code (tests, simulations); errors name the profile.
    pub fn from_profiles(profiles: Vec<DeviceProfile>) -> Result<ProfileSet, ConfigErrors> {
        let loaded = profiles
            .into_iter()
            .map(|p| (format!("<profile {}>", p.name), None, p))
            .collect();
        Self::build(loaded, Vec::new())
    }

    /// Parses one profile from YAML text (as if read from `file`) into a one-profile set.
    pub fn from_yaml_str(file: &Path, text: &str) -> Result<ProfileSet, ConfigErrors> {
        let spec = load_yaml_str::<DeviceProfile>(file, text)?;
        Self::build(
            vec![(file.display().to_string(), Some(text.to_string()), spec)],
            Vec::new(),
        )
    }

    /// Validates each profile, then the cross-profile rules (unique names, disjoint topics, one
    /// canonical unit per metric).
    fn build(
        loaded: Vec<(String, Option<String>, DeviceProfile)>,
        mut errors: Vec<ConfigError>,
    ) -> Result<ProfileSet, ConfigErrors> {
        let mut set = ProfileSet::default();
        // (file, text) of each accepted profile, parallel to set.profiles, for cross-file errors.
        let mut origins: Vec<(String, Option<String>)> = Vec::new();
        let mut units: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (file, text, spec) in loaded {
            let src = Source {
                file: &file,
                text: text.as_deref(),
            };
            if let Some(i) = set.profiles.iter().position(|p| p.spec.name == spec.name) {
                errors.push(src.err(
                    "name",
                    format!(
                        "duplicate profile name {:?} (also in {})",
                        spec.name, origins[i].0
                    ),
                ));
                continue;
            }
            let compiled = match compile::compile(spec, &src) {
                Ok(c) => c,
                Err(es) => {
                    errors.extend(es);
                    continue;
                }
            };
            for (mi, msg) in compiled.messages.iter().enumerate() {
                for route in &set.routes {
                    if route.filter.overlaps(&msg.filter) {
                        let other = &set.profiles[route.profile].spec.name;
                        errors.push(src.err(
                            &format!("messages[{mi}].topic"),
                            format!(
                                "{} overlaps {} of profile {other:?}",
                                msg.filter, route.filter
                            ),
                        ));
                    }
                }
            }
            for (metric, info) in &compiled.metrics {
                match units.get(metric) {
                    Some((unit, owner)) if *unit != info.unit => errors.push(src.err(
                        "messages",
                        format!(
                            "metric {metric} is in {} here but in {unit} in profile {owner:?}",
                            info.unit
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        units.insert(
                            metric.clone(),
                            (info.unit.clone(), compiled.spec.name.clone()),
                        );
                    }
                }
            }
            let index = set.profiles.len();
            for (mi, msg) in compiled.messages.iter().enumerate() {
                set.routes.push(Route {
                    filter: msg.filter.clone(),
                    profile: index,
                    message: mi,
                });
            }
            set.profiles.push(compiled);
            origins.push((file, text));
        }
        if !errors.is_empty() {
            // File order (stable: each file's errors stay in the order they were found).
            errors.sort_by(|a, b| a.file.cmp(&b.file));
            return Err(ConfigErrors(errors));
        }
        // Sort profiles by name and renumber the routes to match.
        let mut order: Vec<usize> = (0..set.profiles.len()).collect();
        order.sort_by(|a, b| set.profiles[*a].spec.name.cmp(&set.profiles[*b].spec.name));
        let mut new_index = vec![0; order.len()];
        for (new, old) in order.iter().enumerate() {
            new_index[*old] = new;
        }
        let mut slots: Vec<Option<CompiledProfile>> = set.profiles.into_iter().map(Some).collect();
        set.profiles = order.iter().filter_map(|i| slots[*i].take()).collect();
        for r in &mut set.routes {
            r.profile = new_index[r.profile];
        }
        set.routes.sort_by(|a, b| {
            let key = |r: &Route| (r.filter.literal_levels(), r.filter.literal_prefix());
            key(b)
                .cmp(&key(a))
                .then(a.profile.cmp(&b.profile))
                .then(a.message.cmp(&b.message))
        });
        Ok(set)
    }

    /// The profile named `name`, as written.
    pub fn get(&self, name: &str) -> Option<&DeviceProfile> {
        self.find(name).map(|p| &p.spec)
    }

    fn find(&self, name: &str) -> Option<&CompiledProfile> {
        self.profiles
            .binary_search_by(|p| p.spec.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.profiles[i])
    }

    /// Profile names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.spec.name.as_str()).collect()
    }

    /// Whether the set holds no profiles.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// Unit and valid range of `metric` as `profile` produces it.
    pub fn metric_info(&self, profile: &str, metric: &str) -> Option<MetricInfo> {
        let p = self.find(profile)?;
        if let Some(info) = p.metrics.get(metric) {
            return Some(info.clone());
        }
        p.event_templates.iter().find_map(|(prefix, suffix, info)| {
            let ty = metric
                .strip_prefix(prefix.as_str())?
                .strip_suffix(suffix.as_str())?;
            compiled::valid_event_type(ty).then(|| info.clone())
        })
    }

    /// Expected reporting interval of `profile` in seconds.
    pub fn interval_secs(&self, profile: &str) -> Option<f64> {
        self.find(profile).map(|p| p.spec.interval_secs)
    }

    /// Canonical metrics `profile` can produce, sorted (event metrics where their types are
    /// listed). Empty for unknown profiles and crew profiles.
    pub fn metrics(&self, profile: &str) -> Vec<String> {
        self.find(profile)
            .map(|p| p.metrics.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// MQTT subscriptions covering every profile's topics (id levels as `+`), sorted, unique.
    pub fn subscriptions(&self) -> Vec<String> {
        let mut subs: Vec<String> = self
            .routes
            .iter()
            .map(|r| r.filter.subscription())
            .collect();
        subs.sort();
        subs.dedup();
        subs
    }

    /// The profile and message `topic` belongs to, with the id from the topic.
    pub fn match_topic(&self, topic: &str) -> Option<TopicMatch<'_>> {
        self.routes.iter().find_map(|r| {
            let id = r.filter.matches(topic)?;
            Some(TopicMatch {
                profile: &self.profiles[r.profile].spec.name,
                message_index: r.message,
                device_id: Some(id.to_string()),
                profile_index: r.profile,
            })
        })
    }

    /// The compiled message a match points at.
    pub(crate) fn message(&self, m: &TopicMatch<'_>) -> Option<&CompiledMessage> {
        self.profiles
            .get(m.profile_index)?
            .messages
            .get(m.message_index)
    }
}
