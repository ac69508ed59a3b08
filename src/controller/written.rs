//! What this replica wrote and its cache may not show yet.
//!
//! A reconcile compares the status it wants with the cached one and writes the difference. Right
//! after a write the cache can still hold the object as it was (the watch event is on its way),
//! and a reconcile in that window would write the same status again: on a bulk import, a second
//! write for many objects. So each write is remembered with the resourceVersion it was computed
//! from: while the cache still shows that resourceVersion, the baseline is what was written, not
//! what is cached. Once the cache moves on, the entry is dropped and the cache is the truth again
//! (whoever wrote last). No ordering of resourceVersions is assumed, only equality.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use serde::Serialize;

/// (kind, namespace, name).
type Key = (&'static str, String, String);

/// The writes whose effect the cache may not show yet.
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<Key, (Option<String>, u64)>>);

/// Fields that change on every computation without changing what a status says.
const VOLATILE: [&str; 2] = ["lastTransitionTime", "durationSeconds"];

/// A fingerprint of `value` that ignores [`VOLATILE`] fields.
pub fn fingerprint(value: &impl Serialize) -> u64 {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in VOLATILE {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(value).unwrap_or_default();
    strip(&mut v);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

impl Written {
    /// Whether to write the status fingerprinted by `wanted` to the object `(kind, ns, name)`
    /// whose cached copy is at `rv` and, compared with the cache, `differs`. `wanted` is called
    /// only when an earlier write must be compared.
    pub fn needs_write(
        &self,
        kind: &'static str,
        ns: &str,
        name: &str,
        rv: Option<&str>,
        differs: bool,
        wanted: &dyn Fn() -> u64,
    ) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return differs;
        };
        let key = (kind, ns.to_string(), name.to_string());
        match map.get(&key) {
            Some((seen, written)) if seen.as_deref() == rv => *written != wanted(),
            Some(_) => {
                map.remove(&key);
                differs
            }
            None => differs,
        }
    }

    /// Record a successful write of `wanted`, computed from the cached copy at `rv`.
    pub fn wrote(&self, kind: &'static str, ns: &str, name: &str, rv: Option<&str>, wanted: u64) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(
                (kind, ns.to_string(), name.to_string()),
                (rv.map(str::to_string), wanted),
            );
        }
    }

    /// Forget the objects of `ns` that `keep` rejects (deleted ones).
    pub fn retain(&self, ns: &str, keep: impl Fn(&'static str, &str) -> bool) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|(kind, n, name), _| n != ns || keep(kind, name));
        }
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lagging_cache_does_not_cause_a_second_identical_write() {
        let w = Written::default();
        let a = fingerprint(&serde_json::json!({"stage": "Production"}));
        assert!(w.needs_write("PolicyVersion", "ns", "v", Some("10"), true, &|| a));
        w.wrote("PolicyVersion", "ns", "v", Some("10"), a);
        // The cache still shows resourceVersion 10: the same status is not written again...
        assert!(!w.needs_write("PolicyVersion", "ns", "v", Some("10"), true, &|| a));
        // ...but a different one is.
        let b = fingerprint(&serde_json::json!({"stage": "Published"}));
        assert!(w.needs_write("PolicyVersion", "ns", "v", Some("10"), true, &|| b));
        // The cache moved on: it is the truth again, and the entry is gone.
        assert!(w.needs_write("PolicyVersion", "ns", "v", Some("11"), true, &|| a));
        assert!(!w.needs_write("PolicyVersion", "ns", "v", Some("11"), false, &|| a));
        assert!(w.is_empty());
    }

    #[test]
    fn objects_are_told_apart_by_kind_namespace_and_name() {
        let w = Written::default();
        let a = fingerprint(&1);
        w.wrote("Policy", "ns", "x", Some("1"), a);
        assert!(w.needs_write("PolicyAttachment", "ns", "x", Some("1"), true, &|| a));
        assert!(w.needs_write("Policy", "other", "x", Some("1"), true, &|| a));
        assert!(w.needs_write("Policy", "ns", "y", Some("1"), true, &|| a));
        w.retain("ns", |_, name| name != "x");
        assert!(w.is_empty());
    }

    #[test]
    fn condition_times_and_step_durations_do_not_change_the_fingerprint() {
        let at = |t: &str, d: f64| {
            serde_json::json!({"conditions": [{"type": "Ready", "lastTransitionTime": t}],
                "tests": {"results": [{"steps": [{"durationSeconds": d}]}]}})
        };
        assert_eq!(fingerprint(&at("1", 0.1)), fingerprint(&at("2", 0.2)));
        assert_ne!(
            fingerprint(&serde_json::json!({"conditions": [{"type": "Ready"}]})),
            fingerprint(&serde_json::json!({"conditions": [{"type": "Stalled"}]}))
        );
    }
}
