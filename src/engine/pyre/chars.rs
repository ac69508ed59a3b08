//! Character sets and CPython's character tables.

use std::collections::HashMap;
use std::sync::OnceLock;

// ─────────────────────────────────────────────────────────────────────────────
// Character sets and CPython's character tables
// ─────────────────────────────────────────────────────────────────────────────

pub(crate) const MAX_CP: u32 = 0x10FFFF;

/// A set of code points as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CharSet {
    pub(crate) ranges: Vec<(u32, u32)>,
}

impl CharSet {
    pub(crate) fn from_ranges(mut r: Vec<(u32, u32)>) -> Self {
        r.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
        for (a, b) in r {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        CharSet { ranges: out }
    }

    pub(crate) fn from_points(points: impl IntoIterator<Item = u32>) -> Self {
        Self::from_ranges(points.into_iter().map(|c| (c, c)).collect())
    }

    pub(crate) fn single(c: u32) -> Self {
        CharSet {
            ranges: vec![(c, c)],
        }
    }

    pub(crate) fn all() -> Self {
        CharSet {
            ranges: vec![(0, MAX_CP)],
        }
    }

    pub(crate) fn contains(&self, c: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < c);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= c)
    }

    pub(crate) fn union(&self, other: &CharSet) -> CharSet {
        let mut r = self.ranges.clone();
        r.extend_from_slice(&other.ranges);
        Self::from_ranges(r)
    }

    pub(crate) fn complement(&self) -> CharSet {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = 0u32;
        for &(a, b) in &self.ranges {
            if a > next {
                out.push((next, a - 1));
            }
            next = b.saturating_add(1);
        }
        if next <= MAX_CP && self.ranges.last().is_none_or(|&(_, b)| b < MAX_CP) {
            out.push((next, MAX_CP));
        }
        CharSet { ranges: out }
    }

    pub(crate) fn intersect(&self, other: &CharSet) -> CharSet {
        self.complement().union(&other.complement()).complement()
    }

    pub(crate) fn minus(&self, other: &CharSet) -> CharSet {
        self.intersect(&other.complement())
    }
}

/// CPython's `_casefix._EXTRA_CASES`: lower-case characters that `IGNORECASE` treats as equal
/// although simple case mapping does not relate them.
pub(crate) const EXTRA_CASES: &[(u32, &[u32])] = &[
    (0x69, &[0x131]),
    (0x73, &[0x17f]),
    (0xb5, &[0x3bc]),
    (0x131, &[0x69]),
    (0x17f, &[0x73]),
    (0x345, &[0x3b9, 0x1fbe]),
    (0x390, &[0x1fd3]),
    (0x3b0, &[0x1fe3]),
    (0x3b2, &[0x3d0]),
    (0x3b5, &[0x3f5]),
    (0x3b8, &[0x3d1]),
    (0x3b9, &[0x345, 0x1fbe]),
    (0x3ba, &[0x3f0]),
    (0x3bc, &[0xb5]),
    (0x3c0, &[0x3d6]),
    (0x3c1, &[0x3f1]),
    (0x3c2, &[0x3c3]),
    (0x3c3, &[0x3c2]),
    (0x3c6, &[0x3d5]),
    (0x3d0, &[0x3b2]),
    (0x3d1, &[0x3b8]),
    (0x3d5, &[0x3c6]),
    (0x3d6, &[0x3c0]),
    (0x3f0, &[0x3ba]),
    (0x3f1, &[0x3c1]),
    (0x3f5, &[0x3b5]),
    (0x432, &[0x1c80]),
    (0x434, &[0x1c81]),
    (0x43e, &[0x1c82]),
    (0x441, &[0x1c83]),
    (0x442, &[0x1c84, 0x1c85]),
    (0x44a, &[0x1c86]),
    (0x463, &[0x1c87]),
    (0x1c80, &[0x432]),
    (0x1c81, &[0x434]),
    (0x1c82, &[0x43e]),
    (0x1c83, &[0x441]),
    (0x1c84, &[0x442, 0x1c85]),
    (0x1c85, &[0x442, 0x1c84]),
    (0x1c86, &[0x44a]),
    (0x1c87, &[0x463]),
    (0x1c88, &[0xa64b]),
    (0x1e61, &[0x1e9b]),
    (0x1e9b, &[0x1e61]),
    (0x1fbe, &[0x345, 0x3b9]),
    (0x1fd3, &[0x390]),
    (0x1fe3, &[0x3b0]),
    (0xa64b, &[0x1c88]),
    (0xfb05, &[0xfb06]),
    (0xfb06, &[0xfb05]),
];

pub(crate) fn extra_cases(c: u32) -> &'static [u32] {
    EXTRA_CASES
        .binary_search_by_key(&c, |&(k, _)| k)
        .map(|i| EXTRA_CASES[i].1)
        .unwrap_or(&[])
}

/// Characters with `str.isdigit()` but not `str.isdecimal()` (Numeric_Type=Digit).
pub(crate) const DIGIT_NOT_DECIMAL: &[(u32, u32)] = &[
    (0xB2, 0xB3),
    (0xB9, 0xB9),
    (0x1369, 0x1371),
    (0x19DA, 0x19DA),
    (0x2070, 0x2070),
    (0x2074, 0x2079),
    (0x2080, 0x2089),
    (0x2460, 0x2468),
    (0x2474, 0x247C),
    (0x2488, 0x2490),
    (0x24EA, 0x24EA),
    (0x24F5, 0x24FD),
    (0x24FF, 0x24FF),
    (0x2776, 0x277E),
    (0x2780, 0x2788),
    (0x278A, 0x2792),
    (0x10A40, 0x10A43),
    (0x10E60, 0x10E68),
    (0x11052, 0x1105A),
    (0x1F100, 0x1F10A),
];

/// `Py_UNICODE_ISSPACE`.
pub(crate) const PY_SPACE: &[(u32, u32)] = &[
    (0x09, 0x0D),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
];

pub(crate) struct Tables {
    /// `\w`: `str.isalnum()` or `_`.
    pub(crate) word: CharSet,
    /// `\d`: `str.isdecimal()`.
    pub(crate) decimal: CharSet,
    pub(crate) space: CharSet,
    /// `str.isdigit()`.
    pub(crate) digit: CharSet,
    /// Not `str.isprintable()` (except the space, which is printable).
    pub(crate) unprintable: CharSet,
    /// Characters whose word-ness differs between Python and the `regex` crate.
    pub(crate) word_mismatch: CharSet,
    /// Characters whose simple lower case differs from themselves.
    pub(crate) lower_changed: CharSet,
    /// `lower(c) -> [c]` for every `c` with `lower(c) != c`.
    pub(crate) lower_pre: HashMap<u32, Vec<u32>>,
    /// `(c, upper(c))` for every `c` with `upper(c) != c`.
    pub(crate) upper_changed: Vec<(u32, u32)>,
}

pub(crate) fn unicode_class(pattern: &str) -> CharSet {
    use regex_syntax::hir::{Class, HirKind};
    match regex_syntax::ParserBuilder::new().build().parse(pattern) {
        Ok(hir) => match hir.kind() {
            HirKind::Class(Class::Unicode(c)) => CharSet::from_ranges(
                c.ranges()
                    .iter()
                    .map(|r| (r.start() as u32, r.end() as u32))
                    .collect(),
            ),
            _ => CharSet::default(),
        },
        Err(_) => CharSet::default(),
    }
}

pub(crate) fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let word = unicode_class(r"[\p{L}\p{N}_]");
        let decimal = unicode_class(r"\p{Nd}");
        let rust_word = unicode_class(r"\w");
        let space = CharSet::from_ranges(PY_SPACE.to_vec());
        let digit = decimal.union(&CharSet::from_ranges(DIGIT_NOT_DECIMAL.to_vec()));
        let unprintable = unicode_class(r"[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]")
            .minus(&CharSet::single(0x20));
        let word_mismatch = word.minus(&rust_word).union(&rust_word.minus(&word));
        let mut lower_pre: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut changed = Vec::new();
        let mut upper_changed = Vec::new();
        for c in (0..=MAX_CP).filter_map(char::from_u32) {
            let l = simple_lower(c);
            if l != c {
                lower_pre.entry(l as u32).or_default().push(c as u32);
                changed.push(c as u32);
            }
            let u = simple_upper(c);
            if u != c {
                upper_changed.push((c as u32, u as u32));
            }
        }
        Tables {
            word,
            decimal,
            space,
            digit,
            unprintable,
            word_mismatch,
            lower_changed: CharSet::from_points(changed),
            lower_pre,
            upper_changed,
        }
    })
}

/// `_PyUnicode_ToLowercase`: the first character of the full lower-case mapping.
pub(crate) fn simple_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// `_PyUnicode_ToUppercase`: the first character of the full upper-case mapping.
pub(crate) fn simple_upper(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

pub(crate) fn lower_cp(c: u32) -> u32 {
    char::from_u32(c).map_or(c, |ch| simple_lower(ch) as u32)
}

pub(crate) fn upper_cp(c: u32) -> u32 {
    char::from_u32(c).map_or(c, |ch| simple_upper(ch) as u32)
}

pub(crate) fn is_cased_cp(c: u32) -> bool {
    lower_cp(c) != c || upper_cp(c) != c
}

/// CPython's character predicates as implemented here (public for the differential test).
pub mod pychar {
    use super::tables;

    /// `\w` in a `str` pattern: `str.isalnum()` or `_`.
    pub fn is_word(c: char) -> bool {
        tables().word.contains(c as u32)
    }

    /// `\d`: `str.isdecimal()`.
    pub fn is_decimal(c: char) -> bool {
        tables().decimal.contains(c as u32)
    }

    /// `\s` and `str.isspace()`.
    pub fn is_space(c: char) -> bool {
        tables().space.contains(c as u32)
    }

    /// `str.isdigit()`.
    pub fn is_digit(c: char) -> bool {
        tables().digit.contains(c as u32)
    }

    /// `str.isprintable()` for one character (what `repr` leaves unescaped).
    pub fn is_printable(c: char) -> bool {
        !tables().unprintable.contains(c as u32)
    }

    /// The simple lower case `re` uses for `IGNORECASE`.
    pub fn lower(c: char) -> char {
        super::simple_lower(c)
    }

    /// The simple upper case.
    pub fn upper(c: char) -> char {
        super::simple_upper(c)
    }
}

/// The code points that `re` with `IGNORECASE` matches when it tests `lower(ch) ∈ set`.
pub(crate) fn lowering_into(set: &CharSet) -> CharSet {
    let t = tables();
    let mut extra = Vec::new();
    for (&l, pre) in &t.lower_pre {
        if set.contains(l) {
            extra.extend(pre.iter().copied());
        }
    }
    set.minus(&t.lower_changed)
        .union(&CharSet::from_points(extra))
}
