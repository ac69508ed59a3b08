//! The backtracking matcher, following `sre`'s search order, with memoised states so it
//! stays polynomial (for what the `regex` crate cannot express).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::*;

// ─────────────────────────────────────────────────────────────────────────────
// Python `re`: the backtracking matcher (for what the `regex` crate cannot express)
// ─────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug)]
pub(crate) enum Inst {
    Set(usize),
    /// Try the first target, then the second.
    Split(usize, usize),
    Jmp(usize),
    Assert(Assertion),
    Look {
        prog: usize,
        behind: Option<usize>,
        negate: bool,
    },
    Match,
}

#[derive(Debug, Default)]
pub(crate) struct Prog {
    pub(crate) insts: Vec<Inst>,
    pub(crate) sets: Vec<CharSet>,
    /// Lookaround bodies.
    pub(crate) subs: Vec<Prog>,
    /// The characters a match can start with (`None` when a match can be empty): other start
    /// positions are skipped, as `sre`'s search prefix check does.
    pub(crate) first: Option<CharSet>,
}

/// The characters a match of `node` can consume first, and whether it can match empty.
pub(crate) fn first_chars(node: &Node) -> (CharSet, bool) {
    match node {
        Node::Set(set) => (set.clone(), false),
        Node::Concat(v) => {
            let mut acc = CharSet::default();
            for n in v {
                let (f, nullable) = first_chars(n);
                acc = acc.union(&f);
                if !nullable {
                    return (acc, false);
                }
            }
            (acc, true)
        }
        Node::Alt(v) => {
            let mut acc = CharSet::default();
            let mut any_nullable = false;
            for n in v {
                let (f, nullable) = first_chars(n);
                acc = acc.union(&f);
                any_nullable |= nullable;
            }
            (acc, any_nullable)
        }
        Node::Repeat { node, min, .. } => {
            let (f, nullable) = first_chars(node);
            (f, nullable || *min == 0)
        }
        Node::Assert(_) | Node::Look { .. } => (CharSet::default(), true),
    }
}

pub(crate) struct ProgBuilder<'a> {
    pub(crate) prog: Prog,
    /// Lookaround bodies already compiled (an unrolled repeat reuses them).
    pub(crate) looks: HashMap<*const Node, usize>,
    pub(crate) _marker: std::marker::PhantomData<&'a Node>,
}

impl<'a> ProgBuilder<'a> {
    pub(crate) fn build(node: &'a Node) -> Prog {
        let mut b = ProgBuilder {
            prog: Prog::default(),
            looks: HashMap::new(),
            _marker: std::marker::PhantomData,
        };
        b.emit(node);
        b.prog.insts.push(Inst::Match);
        let (first, nullable) = first_chars(node);
        b.prog.first = (!nullable).then_some(first);
        b.prog
    }

    pub(crate) fn pc(&self) -> usize {
        self.prog.insts.len()
    }

    pub(crate) fn emit(&mut self, node: &'a Node) {
        match node {
            Node::Set(set) => {
                self.prog.sets.push(set.clone());
                let id = self.prog.sets.len() - 1;
                self.prog.insts.push(Inst::Set(id));
            }
            Node::Concat(v) => {
                for n in v {
                    self.emit(n);
                }
            }
            Node::Alt(v) => {
                let mut jumps = Vec::new();
                for (i, n) in v.iter().enumerate() {
                    if i + 1 < v.len() {
                        let split = self.pc();
                        self.prog.insts.push(Inst::Split(split + 1, 0));
                        self.emit(n);
                        jumps.push(self.pc());
                        self.prog.insts.push(Inst::Jmp(0));
                        let next = self.pc();
                        self.prog.insts[split] = Inst::Split(split + 1, next);
                    } else {
                        self.emit(n);
                    }
                }
                let end = self.pc();
                for j in jumps {
                    self.prog.insts[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                lazy,
            } => {
                for _ in 0..*min {
                    self.emit(node);
                }
                match max {
                    Some(max) => {
                        let mut holes = Vec::new();
                        for _ in *min..*max {
                            holes.push(self.pc());
                            self.prog.insts.push(Inst::Split(0, 0));
                            self.emit(node);
                        }
                        let end = self.pc();
                        for h in holes {
                            self.prog.insts[h] = if *lazy {
                                Inst::Split(end, h + 1)
                            } else {
                                Inst::Split(h + 1, end)
                            };
                        }
                    }
                    None => {
                        let top = self.pc();
                        self.prog.insts.push(Inst::Split(0, 0));
                        self.emit(node);
                        self.prog.insts.push(Inst::Jmp(top));
                        let end = self.pc();
                        self.prog.insts[top] = if *lazy {
                            Inst::Split(end, top + 1)
                        } else {
                            Inst::Split(top + 1, end)
                        };
                    }
                }
            }
            Node::Assert(a) => self.prog.insts.push(Inst::Assert(*a)),
            Node::Look {
                behind,
                negate,
                node: body,
            } => {
                let key: *const Node = &**body;
                let prog = match self.looks.get(&key) {
                    Some(&p) => p,
                    None => {
                        self.prog.subs.push(ProgBuilder::build(body));
                        let p = self.prog.subs.len() - 1;
                        self.looks.insert(key, p);
                        p
                    }
                };
                self.prog.insts.push(Inst::Look {
                    prog,
                    behind: *behind,
                    negate: *negate,
                });
            }
        }
    }
}

/// A hasher for `(pc, pos)` keys.
#[derive(Default)]
pub(crate) struct StateHasher(u64);

impl Hasher for StateHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type Visited = HashSet<u64, BuildHasherDefault<StateHasher>>;

pub(crate) fn char_at(text: &str, pos: usize) -> Option<char> {
    text.get(pos..).and_then(|s| s.chars().next())
}

pub(crate) fn char_before(text: &str, pos: usize) -> Option<char> {
    text.get(..pos).and_then(|s| s.chars().next_back())
}

pub(crate) fn assertion_holds(a: Assertion, text: &str, pos: usize) -> bool {
    let bytes = text.as_bytes();
    match a {
        Assertion::Begin => pos == 0,
        Assertion::BeginLine => pos == 0 || bytes.get(pos - 1) == Some(&b'\n'),
        Assertion::EndString => pos == text.len(),
        Assertion::EndDollar => {
            pos == text.len() || (pos + 1 == text.len() && bytes.get(pos) == Some(&b'\n'))
        }
        Assertion::EndLine => pos == text.len() || bytes.get(pos) == Some(&b'\n'),
        Assertion::Boundary => at_boundary(text, pos),
        Assertion::NonBoundary => {
            !text.is_empty()
                && char_before(text, pos).is_some_and(pychar::is_word)
                    == char_at(text, pos).is_some_and(pychar::is_word)
        }
    }
}

impl Prog {
    /// The end of the first match starting exactly at `start` in `sre`'s backtracking order.
    pub(crate) fn match_at(
        &self,
        text: &str,
        start: usize,
        must_advance: bool,
        match_all: bool,
        visited: &mut Visited,
    ) -> Option<usize> {
        let mut stack: Vec<(usize, usize)> = vec![(0, start)];
        while let Some((mut pc, mut pos)) = stack.pop() {
            loop {
                if !visited.insert(((pc as u64) << 32) | pos as u64) {
                    break;
                }
                match self.insts[pc] {
                    Inst::Set(id) => match char_at(text, pos) {
                        Some(c) if self.sets[id].contains(c as u32) => {
                            pc += 1;
                            pos += c.len_utf8();
                        }
                        _ => break,
                    },
                    Inst::Split(a, b) => {
                        stack.push((b, pos));
                        pc = a;
                    }
                    Inst::Jmp(a) => pc = a,
                    Inst::Assert(a) => {
                        if !assertion_holds(a, text, pos) {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Look {
                        prog,
                        behind,
                        negate,
                    } => {
                        let sub = &self.subs[prog];
                        let found = match behind {
                            None => sub.match_at(text, pos, false, false, &mut Visited::default()),
                            Some(w) => {
                                let mut p = pos;
                                let mut ok = true;
                                for _ in 0..w {
                                    match char_before(text, p) {
                                        Some(c) => p -= c.len_utf8(),
                                        None => {
                                            ok = false;
                                            break;
                                        }
                                    }
                                }
                                if ok {
                                    sub.match_at(text, p, false, false, &mut Visited::default())
                                } else {
                                    None
                                }
                            }
                        }
                        .is_some();
                        if found == negate {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Match => {
                        if (must_advance && pos == start) || (match_all && pos != text.len()) {
                            break;
                        }
                        return Some(pos);
                    }
                }
            }
        }
        None
    }

    /// `sre` search from `start`: the first start position (in order) with a match.
    pub(crate) fn search(
        &self,
        text: &str,
        start: usize,
        must_advance: bool,
    ) -> Option<(usize, usize)> {
        let mut visited = Visited::default();
        let mut s = start;
        loop {
            if let Some(first) = &self.first {
                loop {
                    match char_at(text, s) {
                        Some(c) if first.contains(c as u32) => break,
                        Some(c) => s += c.len_utf8(),
                        None => return None,
                    }
                }
            }
            if let Some(e) = self.match_at(text, s, must_advance && s == start, false, &mut visited)
            {
                return Some((s, e));
            }
            match char_at(text, s) {
                Some(c) => s += c.len_utf8(),
                None => return None,
            }
        }
    }
}
