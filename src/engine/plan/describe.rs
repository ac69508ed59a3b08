//! How classes of requests read: one dimension's class from its answers, a set of groups by
//! the one pattern it is exactly (or is exactly not), and a class's combinations merged
//! greedily where they differ in one dimension.

use std::collections::BTreeSet;

use super::classes::{ALL_TAGS, Dim, DimInfo, Tuple};
use super::strings::{Predicate, StringClass};

/// Combinations a description is simplified from (the merge is quadratic).
pub(super) const MAX_SIMPLIFIED: usize = 512;

/// How a class of one dimension reads, from its answers and the other classes.
pub(super) fn describe(
    dim: Dim,
    preds: &[Predicate],
    holds: &[bool],
    all: &[StringClass],
    null: bool,
) -> String {
    let noun = dim.noun();
    if null {
        return format!("no {noun}");
    }
    let wild = |i: usize| match &preds[i] {
        Predicate::Wildcard(p) if p != "*" => Some(p.as_str()),
        _ => None,
    };
    let cond = |i: usize| match &preds[i] {
        Predicate::Condition(p) => Some(p.raw()),
        _ => None,
    };
    // A pattern not answered yes here but compatible with what is: worth naming as excluded.
    let compatible = |j: usize| {
        all.iter()
            .any(|c| c.holds[j] && holds.iter().zip(&c.holds).all(|(h, o)| !h || *o))
    };
    let yes: Vec<usize> = (0..preds.len()).filter(|&i| holds[i]).collect();
    let exact = yes
        .iter()
        .filter_map(|&i| wild(i))
        .find(|p| !p.ends_with('*'));
    let mut text = match exact {
        Some(e) => format!("{noun} {e}"),
        None => match yes.iter().filter_map(|&i| wild(i)).max_by_key(|p| p.len()) {
            Some(prefix) => format!("{noun} {prefix}"),
            None if yes.iter().any(|&i| cond(i).is_some()) => noun.to_string(),
            None => format!("any other {noun}"),
        },
    };
    if exact.is_none() {
        let except: Vec<&str> = (0..preds.len())
            .filter(|&j| !holds[j] && compatible(j))
            .filter_map(wild)
            .collect();
        if !except.is_empty() {
            text.push_str(&format!(" except {}", except.join(", ")));
        }
    }
    let matching: Vec<String> = yes
        .iter()
        .filter_map(|&i| cond(i))
        .map(|r| format!("/{r}/"))
        .collect();
    if !matching.is_empty() {
        text.push_str(&format!(" matching {}", matching.join(" and ")));
    }
    let not: Vec<String> = (0..preds.len())
        .filter(|&j| !holds[j] && compatible(j))
        .filter_map(cond)
        .map(|r| format!("/{r}/"))
        .collect();
    if !not.is_empty() {
        text.push_str(&format!(" not matching {}", not.join(" or ")));
    }
    text
}

/// A set of groups per dimension.
type Cube = [BTreeSet<usize>; 4];

/// Merge combinations that differ in one dimension, until none do (a greedy cover: what a
/// person reads, not a minimal one).
fn simplify(tuples: &[Tuple]) -> Vec<Cube> {
    let mut cubes: Vec<Cube> = tuples
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|t| t.map(|g| BTreeSet::from([g])))
        .collect();
    loop {
        let mut found = None;
        'search: for i in 0..cubes.len() {
            for j in i + 1..cubes.len() {
                let differ: Vec<usize> = (0..4).filter(|&d| cubes[i][d] != cubes[j][d]).collect();
                if differ.len() <= 1 {
                    found = Some((i, j, differ.first().copied()));
                    break 'search;
                }
            }
        }
        let Some((i, j, d)) = found else { break };
        let other = cubes.remove(j);
        if let Some(d) = d {
            cubes[i][d].extend(other[d].iter().copied());
        }
    }
    cubes
}

/// How a set of groups of one dimension reads; `None` when it is every group.
fn describe_groups(info: &DimInfo, set: &BTreeSet<usize>) -> Option<String> {
    if set.len() == info.groups.len() {
        return None;
    }
    let chosen: BTreeSet<(usize, usize)> = set
        .iter()
        .flat_map(|&g| (0..info.groups[g].members.len()).map(move |m| (g, m)))
        .collect();
    // One pattern whose values are exactly these (or exactly the others).
    let all = || {
        info.groups.iter().enumerate().flat_map(|(g, grp)| {
            grp.members
                .iter()
                .enumerate()
                .map(move |(m, x)| ((g, m), x))
        })
    };
    let noun = info.dim.noun();
    for (p, pred) in info.preds.iter().enumerate() {
        let yes: BTreeSet<(usize, usize)> = all()
            .filter(|(_, x)| x.holds.get(p).copied().unwrap_or(false))
            .map(|(id, _)| id)
            .collect();
        let no: BTreeSet<(usize, usize)> = all()
            .filter(|(_, x)| !x.holds.get(p).copied().unwrap_or(false))
            .map(|(id, _)| id)
            .collect();
        let (pos, neg) = match pred {
            Predicate::Wildcard(w) if w != "*" => {
                (format!("{noun} {w}"), format!("{noun} other than {w}"))
            }
            Predicate::Condition(c) => (
                format!("{noun} matching /{}/", c.raw()),
                format!("{noun} not matching /{}/", c.raw()),
            ),
            Predicate::Wildcard(_) => continue,
        };
        if yes == chosen {
            return Some(pos);
        }
        if no == chosen {
            return Some(neg);
        }
    }
    let mut parts: Vec<&str> = chosen
        .iter()
        .take(4)
        .map(|&(g, m)| info.groups[g].members[m].description.as_str())
        .collect();
    let more = chosen.len().saturating_sub(4);
    let more_text = format!("{more} more");
    if more > 0 {
        parts.push(&more_text);
    }
    Some(if parts.len() > 1 {
        format!("({})", parts.join(" or "))
    } else {
        parts.concat()
    })
}

pub(super) fn describe_tuples(
    info: &[DimInfo],
    tag_texts: &[String],
    tuples: &[Tuple],
    truncated: bool,
) -> String {
    let cubes = if tuples.len() <= MAX_SIMPLIFIED {
        simplify(tuples)
    } else {
        tuples
            .iter()
            .take(3)
            .map(|t| t.map(|g| BTreeSet::from([g])))
            .collect()
    };
    let shown = cubes.len().min(4);
    let mut parts: Vec<String> = cubes
        .iter()
        .take(shown)
        .map(|c| {
            let mut dims: Vec<String> = (0..3)
                .filter_map(|d| describe_groups(&info[d], &c[d]))
                .collect();
            if !c[3].contains(&ALL_TAGS) {
                let texts: Vec<&str> = c[3]
                    .iter()
                    .take(3)
                    .map(|&t| tag_texts[t].as_str())
                    .collect();
                let more = c[3].len().saturating_sub(3);
                let mut text = texts.join(" or ");
                if more > 0 {
                    text.push_str(&format!(" or {more} more tag sets"));
                }
                dims.push(if c[3].len() > 1 {
                    format!("({text})")
                } else {
                    text
                });
            }
            if dims.is_empty() {
                "every request".to_string()
            } else {
                dims.join(", ")
            }
        })
        .collect();
    if cubes.len() > shown || truncated || tuples.len() > MAX_SIMPLIFIED {
        parts.push("other combinations".into());
    }
    parts.join("; or ")
}
