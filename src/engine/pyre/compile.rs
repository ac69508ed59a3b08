//! Compilation: flags resolved, character classes made explicit, and the exact translation
//! to the `regex` crate where one exists.

use super::*;

// ─────────────────────────────────────────────────────────────────────────────
// Python `re`: compilation (flags resolved, character classes made explicit)
// ─────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Assertion {
    /// `\A`, `^` without MULTILINE.
    Begin,
    /// `^` with MULTILINE.
    BeginLine,
    /// `$` without MULTILINE: the end, or before a final newline.
    EndDollar,
    /// `$` with MULTILINE.
    EndLine,
    /// `\Z`.
    EndString,
    Boundary,
    NonBoundary,
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Set(CharSet),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        lazy: bool,
    },
    Assert(Assertion),
    Look {
        /// Look-behind width in code points; `None` for look-ahead.
        behind: Option<usize>,
        negate: bool,
        node: Box<Node>,
    },
}

/// The code points a literal matches (`LITERAL`, `LITERAL_UNI_IGNORE` and the case fixes).
pub(crate) fn literal_set(c: u32, flags: u8) -> CharSet {
    if flags & FLAG_I == 0 || !is_cased_cp(c) {
        return CharSet::single(c);
    }
    let lo = lower_cp(c);
    let t = tables();
    let mut points = Vec::with_capacity(4);
    for &target in std::iter::once(&lo).chain(extra_cases(lo)) {
        if lower_cp(target) == target {
            points.push(target);
        }
        if let Some(pre) = t.lower_pre.get(&target) {
            points.extend_from_slice(pre);
        }
    }
    CharSet::from_points(points)
}

/// The code points a class matches (`IN`, `IN_UNI_IGNORE` as `_optimize_charset` builds it).
pub(crate) fn class_set(items: &[SetItem], negate: bool, flags: u8) -> CharSet {
    let mut cats = CharSet::default();
    for item in items {
        if let SetItem::Cat(c) = item {
            cats = cats.union(&c.set());
        }
    }
    let positive = if flags & FLAG_I == 0 {
        let mut r = Vec::new();
        for item in items {
            match *item {
                SetItem::Lit(c) => r.push((c, c)),
                SetItem::Range(a, b) => r.push((a, b)),
                SetItem::Cat(_) => {}
            }
        }
        CharSet::from_ranges(r).union(&cats)
    } else {
        // The charmap holds lower(c) (plus case fixes) for BMP members; non-BMP members stay
        // as tail tests on lower(ch) (a range also accepts upper(lower(ch))).
        let mut bmp: Vec<u32> = Vec::new();
        let mut tail_lits: Vec<u32> = Vec::new();
        let mut tail_ranges: Vec<(u32, u32)> = Vec::new();
        let mut hascased = false;
        let mark = |l: u32, bmp: &mut Vec<u32>| {
            bmp.push(l);
            bmp.extend_from_slice(extra_cases(l));
        };
        for item in items {
            match *item {
                SetItem::Lit(c) => {
                    let l = lower_cp(c);
                    if l < 0x10000 {
                        mark(l, &mut bmp);
                        hascased |= is_cased_cp(c);
                    } else {
                        hascased = true;
                        tail_lits.push(c);
                    }
                }
                SetItem::Range(a, b) => {
                    let mut overflow = false;
                    for c in a..=b {
                        let l = lower_cp(c);
                        if l >= 0x10000 {
                            overflow = true;
                            break;
                        }
                        mark(l, &mut bmp);
                    }
                    if overflow {
                        hascased = true;
                        tail_ranges.push((a, b));
                    } else if !hascased {
                        hascased = (a..=b).any(is_cased_cp);
                    }
                }
                SetItem::Cat(_) => {}
            }
        }
        let mut tested = CharSet::from_points(bmp)
            .union(&CharSet::from_points(tail_lits))
            .union(&cats);
        if !tail_ranges.is_empty() {
            let t = tables();
            let mut extra: Vec<(u32, u32)> = tail_ranges.clone();
            for &(c, u) in &t.upper_changed {
                if tail_ranges.iter().any(|&(a, b)| a <= u && u <= b) {
                    extra.push((c, c));
                }
            }
            tested = tested.union(&CharSet::from_ranges(extra));
        }
        if hascased {
            // IN_UNI_IGNORE: the test applies to lower(ch).
            lowering_into(&tested)
        } else {
            tested
        }
    };
    if negate {
        positive.complement()
    } else {
        positive
    }
}

pub(crate) fn compile_items(items: &[Item], flags: u8) -> Result<Node, ReError> {
    let nodes = items
        .iter()
        .map(|i| compile_item(i, flags))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if nodes.len() == 1 {
        nodes.into_iter().next().unwrap_or(Node::Concat(Vec::new()))
    } else {
        Node::Concat(nodes)
    })
}

pub(crate) fn compile_item(item: &Item, flags: u8) -> Result<Node, ReError> {
    if flags & FLAG_A != 0 {
        return unsupported("the ASCII flag (?a)");
    }
    if flags & FLAG_T != 0 {
        return unsupported("the TEMPLATE flag (?t)");
    }
    Ok(match item {
        Item::Lit(c) => Node::Set(literal_set(*c, flags)),
        Item::NotLit(c) => Node::Set(literal_set(*c, flags).complement()),
        Item::Any => Node::Set(if flags & FLAG_S != 0 {
            CharSet::all()
        } else {
            CharSet::single('\n' as u32).complement()
        }),
        Item::In { negate, items } => Node::Set(class_set(items, *negate, flags)),
        Item::At(at) => Node::Assert(match at {
            At::Beginning if flags & FLAG_M != 0 => Assertion::BeginLine,
            At::Beginning | At::BeginningString => Assertion::Begin,
            At::End if flags & FLAG_M != 0 => Assertion::EndLine,
            At::End => Assertion::EndDollar,
            At::EndString => Assertion::EndString,
            At::Boundary => Assertion::Boundary,
            At::NonBoundary => Assertion::NonBoundary,
        }),
        Item::Branch(branches) => Node::Alt(
            branches
                .iter()
                .map(|b| compile_items(b, flags))
                .collect::<Result<_, _>>()?,
        ),
        Item::Repeat {
            min,
            max,
            lazy,
            possessive,
            body,
        } => {
            if *possessive {
                return unsupported("a possessive quantifier");
            }
            if *min > MAX_REPEAT_BOUND || max.is_some_and(|m| m > MAX_REPEAT_BOUND) {
                return unsupported("a repeat bound above 1000");
            }
            if max.is_none_or(|m| m > 1) && width(body).0 == 0 {
                return unsupported("a repeated sub-pattern that can match the empty string");
            }
            Node::Repeat {
                node: Box::new(compile_items(body, flags)?),
                min: *min as u32,
                max: max.map(|m| m as u32),
                lazy: *lazy,
            }
        }
        Item::Sub { add, del, body, .. } => compile_items(body, (flags | add) & !del)?,
        Item::Assert {
            behind,
            negate,
            body,
        } => {
            let behind = if *behind {
                let (lo, hi) = width(body);
                if lo != hi {
                    return Err(ReError::Invalid(
                        "look-behind requires fixed-width pattern".into(),
                    ));
                }
                Some(usize::try_from(lo).unwrap_or(usize::MAX))
            } else {
                None
            };
            Node::Look {
                behind,
                negate: *negate,
                node: Box::new(compile_items(body, flags)?),
            }
        }
        Item::Atomic => return unsupported("an atomic group (?>...)"),
        Item::GroupRef => return unsupported("a backreference"),
    })
}

pub(crate) fn min_width(node: &Node) -> u64 {
    match node {
        Node::Set(_) => 1,
        Node::Concat(v) => v.iter().map(min_width).sum(),
        Node::Alt(v) => v.iter().map(min_width).min().unwrap_or(0),
        Node::Repeat { node, min, .. } => min_width(node) * u64::from(*min),
        Node::Assert(_) | Node::Look { .. } => 0,
    }
}

/// Translate into the `regex` crate's syntax, or `None` for what it cannot express.
pub(crate) fn to_rust(node: &Node, out: &mut String, uses_boundary: &mut bool) -> bool {
    match node {
        Node::Set(set) => {
            out.push('[');
            let mut any = false;
            for &(a, b) in &set.ranges {
                for (a, b) in [(a, b.min(0xD7FF)), (a.max(0xE000), b)] {
                    if a <= b {
                        out.push_str(&format!("\\x{{{a:X}}}-\\x{{{b:X}}}"));
                        any = true;
                    }
                }
            }
            if !any {
                out.push_str("^\\x{0}-\\x{10FFFF}");
            }
            out.push(']');
            true
        }
        Node::Concat(v) => {
            out.push_str("(?:");
            for n in v {
                if !to_rust(n, out, uses_boundary) {
                    return false;
                }
            }
            out.push(')');
            true
        }
        Node::Alt(v) => {
            out.push_str("(?:");
            for (i, n) in v.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                if !to_rust(n, out, uses_boundary) {
                    return false;
                }
            }
            out.push(')');
            true
        }
        Node::Repeat {
            node,
            min,
            max,
            lazy,
        } => {
            out.push_str("(?:");
            if !to_rust(node, out, uses_boundary) {
                return false;
            }
            out.push(')');
            match max {
                Some(m) => out.push_str(&format!("{{{min},{m}}}")),
                None => out.push_str(&format!("{{{min},}}")),
            }
            if *lazy {
                out.push('?');
            }
            true
        }
        Node::Assert(a) => {
            out.push_str(match a {
                Assertion::Begin => "\\A",
                Assertion::BeginLine => "(?m:^)",
                Assertion::EndLine => "(?m:$)",
                Assertion::EndString => "\\z",
                Assertion::Boundary => {
                    *uses_boundary = true;
                    "\\b"
                }
                Assertion::NonBoundary => {
                    *uses_boundary = true;
                    "\\B"
                }
                Assertion::EndDollar => return false,
            });
            true
        }
        Node::Look { .. } => false,
    }
}
