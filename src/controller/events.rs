//! The Events of one reconcile, gathered and then published: one per object while there are
//! few, one summary per reason when a bulk change (an import, a namespace-wide rollback) would
//! otherwise write an Event for every object. Statuses still say everything per object.

use k8s_openapi::api::core::v1::ObjectReference;

use crate::engine::status::Event;

/// More objects than this with the same reason in one reconcile get one summary Event.
pub const PER_OBJECT_LIMIT: usize = 10;

/// Names listed in a summary before "and N more".
const NAMES_LISTED: usize = 8;

/// What to publish: an Event regarding one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub regarding: ObjectReference,
    pub event: Event,
}

/// Gather events in reconcile order, then plan them.
#[derive(Debug, Default)]
pub struct Gathered(Vec<Planned>);

impl Gathered {
    pub fn add(&mut self, regarding: ObjectReference, events: impl IntoIterator<Item = Event>) {
        self.0.extend(events.into_iter().map(|event| Planned {
            regarding: regarding.clone(),
            event,
        }));
    }

    /// The Events to publish: each reason seen for at most [`PER_OBJECT_LIMIT`] objects keeps
    /// its per-object Events; a reason seen for more becomes one Event regarding `summary`
    /// (the namespace's gateway bundle), which counts and names the objects and quotes the
    /// first one's note. Order: first appearance of each reason.
    pub fn plan(self, summary: &ObjectReference) -> Vec<Planned> {
        let mut groups: Vec<(bool, &'static str, Vec<Planned>)> = Vec::new();
        for p in self.0 {
            match groups
                .iter_mut()
                .find(|(w, r, _)| *w == p.event.warning && *r == p.event.reason)
            {
                Some((_, _, list)) => list.push(p),
                None => groups.push((p.event.warning, p.event.reason, vec![p])),
            }
        }
        let mut out = Vec::new();
        for (warning, reason, list) in groups {
            if list.len() <= PER_OBJECT_LIMIT {
                out.extend(list);
                continue;
            }
            out.push(Planned {
                regarding: summary.clone(),
                event: Event {
                    warning,
                    reason,
                    note: summarise(reason, &list),
                },
            });
        }
        out
    }
}

/// "1000 PolicyVersions (p00000-v1, …, and 992 more): Promoted. The first: <note>".
fn summarise(reason: &str, list: &[Planned]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for p in list {
        let kind = p.regarding.kind.clone().unwrap_or_default();
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let counted: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let mut names: Vec<String> = list
        .iter()
        .take(NAMES_LISTED)
        .map(|p| p.regarding.name.clone().unwrap_or_default())
        .collect();
    if list.len() > NAMES_LISTED {
        names.push(format!("and {} more", list.len() - NAMES_LISTED));
    }
    format!(
        "{reason}: {} ({}); each one's status has the details. The first: {}",
        counted.join(", "),
        names.join(", "),
        list[0].event.note
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some(kind.into()),
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..Default::default()
        }
    }

    fn ev(reason: &'static str, note: &str) -> Event {
        Event {
            warning: false,
            reason,
            note: note.into(),
        }
    }

    #[test]
    fn few_objects_keep_their_own_events_in_order() {
        let mut g = Gathered::default();
        g.add(obj("PolicyVersion", "a-v1"), [ev("Promoted", "a")]);
        g.add(obj("Policy", "b"), [ev("NoProductionVersion", "b")]);
        g.add(obj("PolicyVersion", "c-v1"), [ev("Promoted", "c")]);
        let plan = g.plan(&obj("ConfigMap", "bundle"));
        let seen: Vec<_> = plan
            .iter()
            .map(|p| (p.regarding.name.clone().unwrap(), p.event.note.clone()))
            .collect();
        assert_eq!(
            seen,
            [("a-v1", "a"), ("c-v1", "c"), ("b", "b")].map(|(n, m)| (n.to_string(), m.to_string()))
        );
    }

    #[test]
    fn a_bulk_change_is_one_summary_per_reason_on_the_bundle() {
        let mut g = Gathered::default();
        for i in 0..1000 {
            g.add(
                obj("PolicyVersion", &format!("p{i:04}-v1")),
                [ev(
                    "Promoted",
                    &format!("version 1 of p{i:04} is in production"),
                )],
            );
        }
        g.add(obj("Policy", "x"), [ev("NoProductionVersion", "x left")]);
        let plan = g.plan(&obj("ConfigMap", "guardrail-gateway-config"));
        assert_eq!(plan.len(), 2);
        assert_eq!(
            plan[0].regarding.name.as_deref(),
            Some("guardrail-gateway-config")
        );
        assert_eq!(
            plan[0].event.note,
            "Promoted: 1000 PolicyVersions (p0000-v1, p0001-v1, p0002-v1, p0003-v1, p0004-v1, p0005-v1, p0006-v1, p0007-v1, and 992 more); each one's status has the details. The first: version 1 of p0000 is in production"
        );
        assert_eq!(plan[1].regarding.name.as_deref(), Some("x"));
    }

    #[test]
    fn the_limit_is_inclusive_and_warnings_group_apart_from_normal_events() {
        let mut g = Gathered::default();
        for i in 0..PER_OBJECT_LIMIT {
            g.add(obj("Policy", &format!("p{i}")), [ev("R", "n")]);
            g.add(
                obj("Policy", &format!("p{i}")),
                [Event {
                    warning: true,
                    reason: "R",
                    note: "w".into(),
                }],
            );
        }
        assert_eq!(g.plan(&obj("ConfigMap", "b")).len(), 2 * PER_OBJECT_LIMIT);
    }
}
