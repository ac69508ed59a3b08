//! Traffic replay (api.md §8, `--contexts`): request contexts with counts, resolved in both
//! states with the indexed resolver.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::model::{Attachment, MatchContext, PolicyMap};
use crate::engine::pipeline::{Message, Request, Rewrite, Verdict};
use crate::engine::resolver::Resolver;
use crate::engine::testing::GuardrailProvider;

/// One line of a contexts file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    count: Option<u64>,
}

/// A request context and how many requests it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    pub context: MatchContext,
    pub count: u64,
}

/// A contexts line that is not one: its number (from 1) and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "line {line}: {reason} (each line is {{\"team\": ..., \"key\": ..., \"model\": ..., \"tags\": [...], \"count\": N}}; blank lines are skipped)"
)]
pub struct ContextsError {
    pub line: usize,
    pub reason: String,
}

/// Parse JSON Lines of request contexts.
pub fn parse(text: &str) -> Result<Vec<Weighted>, ContextsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| ContextsError {
            line: i + 1,
            reason: e.to_string(),
        })?;
        let count = line.count.unwrap_or(1);
        if count == 0 {
            return Err(ContextsError {
                line: i + 1,
                reason: "count must be an integer of at least 1".into(),
            });
        }
        out.push(Weighted {
            context: MatchContext {
                team_alias: line.team,
                key_alias: line.key,
                model: line.model,
                tags: line.tags.filter(|t| !t.is_empty()),
            },
            count,
        });
    }
    Ok(out)
}

/// Requests that gain or lose one guardrail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuardrailTraffic {
    pub guardrail: String,
    pub gained: u64,
    pub lost: u64,
}

/// The traffic part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Sum of counts.
    pub requests: u64,
    /// Sum of counts of contexts whose effective guardrails differ.
    pub changed: u64,
    /// By guardrail name.
    pub guardrails: Vec<GuardrailTraffic>,
    /// With sample messages: what the guardrails of each state do to the changed requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageImpact>,
}

/// Sample messages run for real through both states' guardrails, for the changed requests.
///
/// Each changed context's requests are assumed to carry the sample messages in equal shares:
/// `blocked` is the sum over changed contexts of `count × (samples the new state blocks and
/// the base did not) / samples`, rounded; likewise `masked` (the new state masks or rewrites,
/// the base let through unchanged) and `unblocked` (the base blocked, the new state does not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageImpact {
    pub samples: usize,
    pub blocked: u64,
    pub masked: u64,
    pub unblocked: u64,
    /// Effective guardrails of changed requests with no offline implementation (not run).
    pub not_run: Vec<String>,
}

/// Sample messages and the guardrails of each state.
pub struct Messages<'a> {
    pub texts: &'a [String],
    pub base: &'a dyn GuardrailProvider,
    pub new: &'a dyn GuardrailProvider,
}

/// A messages file: one message a line (blank lines skipped); a line that starts with `"` is a
/// JSON string, so a message can hold newlines.
pub fn parse_messages(text: &str) -> Result<Vec<String>, ContextsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        if raw.trim_start().starts_with('"') {
            let s: String = serde_json::from_str(raw.trim()).map_err(|e| ContextsError {
                line: i + 1,
                reason: format!("a line starting with \" is a JSON string: {e}"),
            })?;
            out.push(s);
        } else {
            out.push(raw.to_string());
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allow,
    Mask,
    Block,
}

/// What a set of guardrails, each run on its own (LiteLLM without a pipeline), does to a
/// message: blocked when one fails, masked when one rewrites it.
fn outcome(
    guardrails: &[String],
    provider: &dyn GuardrailProvider,
    model: Option<&str>,
    text: &str,
    not_run: &mut std::collections::BTreeSet<String>,
) -> Outcome {
    let request = Request {
        model: model.map(str::to_string),
        messages: vec![Message {
            role: "user".into(),
            content: text.to_string(),
        }],
        response: Some(text.to_string()),
    };
    let mut result = Outcome::Allow;
    for g in guardrails {
        let Some(real) = provider.real(g) else {
            not_run.insert(g.clone());
            continue;
        };
        match real.check(provider.mode(g), &request) {
            Verdict::Fail(_) => return Outcome::Block,
            Verdict::Pass(Rewrite::InPlace(r) | Rewrite::Returned(r)) if r != request => {
                result = Outcome::Mask;
            }
            _ => {}
        }
    }
    result
}

/// Replay `contexts` against both states (in parallel, one chunk per available CPU).
pub fn replay(
    base: (&[Attachment], &PolicyMap),
    new: (&[Attachment], &PolicyMap),
    contexts: &[Weighted],
    messages: Option<&Messages<'_>>,
) -> Traffic {
    let before = Resolver::new(base.0, base.1);
    let after = Resolver::new(new.0, new.1);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = contexts.len().div_ceil(threads).max(1);
    let keep_changed = messages.is_some();
    // Per chunk: requests, changed, per guardrail (gained, lost), and the contexts that changed.
    type Part<'c> = (
        u64,
        u64,
        BTreeMap<String, (u64, u64)>,
        Vec<(&'c Weighted, Vec<String>, Vec<String>)>,
    );
    let parts: Vec<Part<'_>> = std::thread::scope(|scope| {
        let handles: Vec<_> = contexts
            .chunks(chunk)
            .map(|part| {
                let (before, after) = (&before, &after);
                scope.spawn(move || {
                    let mut p: Part<'_> = (0, 0, BTreeMap::new(), Vec::new());
                    for w in part {
                        p.0 += w.count;
                        let b = before.effective(&w.context);
                        let a = after.effective(&w.context);
                        if a == b {
                            continue;
                        }
                        p.1 += w.count;
                        for g in a.iter().filter(|g| b.binary_search(g).is_err()) {
                            p.2.entry(g.to_string()).or_default().0 += w.count;
                        }
                        for g in b.iter().filter(|g| a.binary_search(g).is_err()) {
                            p.2.entry(g.to_string()).or_default().1 += w.count;
                        }
                        if keep_changed {
                            p.3.push((
                                w,
                                b.iter().map(|g| g.to_string()).collect(),
                                a.iter().map(|g| g.to_string()).collect(),
                            ));
                        }
                    }
                    p
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut t = Traffic {
        requests: 0,
        changed: 0,
        guardrails: Vec::new(),
        messages: None,
    };
    let mut by: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut changed = Vec::new();
    for (requests, c, g, list) in parts {
        t.requests += requests;
        t.changed += c;
        for (name, (gained, lost)) in g {
            let e = by.entry(name).or_default();
            e.0 += gained;
            e.1 += lost;
        }
        changed.extend(list);
    }
    if let Some(m) = messages {
        t.messages = Some(message_impact(m, &changed));
    }
    t.guardrails = by
        .into_iter()
        .map(|(guardrail, (gained, lost))| GuardrailTraffic {
            guardrail,
            gained,
            lost,
        })
        .collect();
    t
}

/// Sample messages on the changed contexts (each with its before and after sets).
fn message_impact(
    m: &Messages<'_>,
    changed: &[(&Weighted, Vec<String>, Vec<String>)],
) -> MessageImpact {
    // (share of samples newly blocked, masked, unblocked) by (before, after, model).
    type Key = (Vec<String>, Vec<String>, Option<String>);
    let mut shares: std::collections::HashMap<Key, (f64, f64, f64)> = Default::default();
    let mut not_run = std::collections::BTreeSet::new();
    let (mut blocked, mut masked, mut unblocked) = (0f64, 0f64, 0f64);
    if !m.texts.is_empty() {
        for (w, b, a) in changed {
            let key = (b.clone(), a.clone(), w.context.model.clone());
            let share = *shares.entry(key).or_insert_with(|| {
                let n = m.texts.len() as f64;
                let (mut nb, mut nm, mut nu) = (0usize, 0usize, 0usize);
                for text in m.texts {
                    let model = w.context.model.as_deref();
                    let was = outcome(b, m.base, model, text, &mut not_run);
                    let now = outcome(a, m.new, model, text, &mut not_run);
                    match (was, now) {
                        (Outcome::Allow | Outcome::Mask, Outcome::Block) => nb += 1,
                        (Outcome::Allow, Outcome::Mask) => nm += 1,
                        (Outcome::Block, Outcome::Allow | Outcome::Mask) => nu += 1,
                        _ => {}
                    }
                }
                (nb as f64 / n, nm as f64 / n, nu as f64 / n)
            });
            let c = w.count as f64;
            blocked += c * share.0;
            masked += c * share.1;
            unblocked += c * share.2;
        }
    }
    MessageImpact {
        samples: m.texts.len(),
        blocked: blocked.round() as u64,
        masked: masked.round() as u64,
        unblocked: unblocked.round() as u64,
        not_run: not_run.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{PipelineMode, PolicyContent};
    use crate::engine::pipeline::Guardrail;

    struct Fake;
    struct Blocks;
    struct Masks;
    impl Guardrail for Blocks {
        fn check(&self, _: PipelineMode, r: &Request) -> Verdict {
            if r.messages[0].content.contains("bad") {
                Verdict::Fail("blocked".into())
            } else {
                Verdict::Pass(Rewrite::None)
            }
        }
    }
    impl Guardrail for Masks {
        fn check(&self, _: PipelineMode, r: &Request) -> Verdict {
            let mut out = r.clone();
            out.messages[0].content = r.messages[0].content.replace("pii", "***");
            Verdict::Pass(Rewrite::InPlace(out))
        }
    }
    impl GuardrailProvider for Fake {
        fn real(&self, name: &str) -> Option<&dyn Guardrail> {
            match name {
                "blk" => Some(&Blocks),
                "msk" => Some(&Masks),
                _ => None,
            }
        }
        fn mode(&self, _: &str) -> PipelineMode {
            PipelineMode::PreCall
        }
    }

    #[test]
    fn sample_messages_estimate_newly_blocked_masked_and_unblocked_requests() {
        let att = vec![Attachment {
            policy: "p".into(),
            scope: Some("*".into()),
            ..Default::default()
        }];
        let pol = |add: &[&str]| -> PolicyMap {
            [(
                "p".to_string(),
                PolicyContent {
                    add: add.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
            )]
            .into()
        };
        let (base, new) = (pol(&["other"]), pol(&["blk", "msk", "other"]));
        let ctx = vec![Weighted {
            context: MatchContext::default(),
            count: 40,
        }];
        let texts: Vec<String> = ["bad pii", "pii here", "fine", "also fine"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = Messages {
            texts: &texts,
            base: &Fake,
            new: &Fake,
        };
        let t = replay((&att, &base), (&att, &new), &ctx, Some(&m));
        assert_eq!(t.changed, 40);
        let got = t.messages.unwrap();
        assert_eq!((got.blocked, got.masked, got.unblocked), (10, 10, 0));
        assert_eq!(got.not_run, vec!["other"]);
        // The other way round: what was blocked no longer is.
        let t = replay((&att, &new), (&att, &base), &ctx, Some(&m));
        assert_eq!(t.messages.unwrap().unblocked, 10);
    }

    #[test]
    fn messages_are_lines_or_json_strings() {
        let m = parse_messages("plain text\n\n\"two\\nlines\"\n").unwrap();
        assert_eq!(m, vec!["plain text".to_string(), "two\nlines".to_string()]);
        let e = parse_messages("ok\n\"unterminated\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn lines_blank_lines_defaults_and_errors_name_the_line() {
        let w =
            parse("{\"team\": \"t\", \"count\": 3}\n\n{\"model\": \"m\", \"tags\": []}\n").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].count, 3);
        assert_eq!(w[0].context.team_alias.as_deref(), Some("t"));
        assert_eq!(w[1].count, 1);
        assert_eq!(w[1].context.tags, None);
        let e = parse("{\"team\": \"t\"}\nnot json\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("{\"team\": \"t\", \"count\": 0}").unwrap_err();
        assert!(e.to_string().contains("line 1: count"), "{e}");
        let e = parse("{\"teams\": \"t\"}").unwrap_err();
        assert!(e.reason.contains("teams"), "{e}");
        assert!(parse("{\"count\": -1}").is_err());
    }
}
