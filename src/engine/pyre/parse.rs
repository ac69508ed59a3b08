//! The parser: CPython 3.11 `re._parser`, the subset reproduced here.

use std::collections::HashMap;

use super::*;

// ─────────────────────────────────────────────────────────────────────────────
// Python `re`: parser (CPython 3.11 `re._parser`, the subset reproduced here)
// ─────────────────────────────────────────────────────────────────────────────

/// Why a pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReError {
    /// Python's `re.compile` raises too.
    Invalid(String),
    /// Valid Python, but outside what this module reproduces exactly.
    Unsupported(String),
}

impl ReError {
    pub(crate) fn describe(&self, pattern: &str) -> String {
        match self {
            ReError::Invalid(m) => format!("invalid regex {pattern:?}: {m}"),
            ReError::Unsupported(m) => format!(
                "regex {pattern:?} uses {m}, which the offline content filter does not reproduce"
            ),
        }
    }
}

pub(crate) fn invalid<T>(msg: impl Into<String>, pos: usize) -> Result<T, ReError> {
    Err(ReError::Invalid(format!(
        "{} at position {pos}",
        msg.into()
    )))
}

pub(crate) fn unsupported<T>(what: &str) -> Result<T, ReError> {
    Err(ReError::Unsupported(what.to_string()))
}

pub(crate) const FLAG_I: u8 = 1;
pub(crate) const FLAG_M: u8 = 2;
pub(crate) const FLAG_S: u8 = 4;
pub(crate) const FLAG_X: u8 = 8;
pub(crate) const FLAG_A: u8 = 16;
pub(crate) const FLAG_U: u8 = 32;
pub(crate) const FLAG_L: u8 = 64;
pub(crate) const FLAG_T: u8 = 128;
pub(crate) const TYPE_FLAGS: u8 = FLAG_A | FLAG_L | FLAG_U;

pub(crate) fn flag_bit(c: char) -> Option<u8> {
    Some(match c {
        'i' => FLAG_I,
        'L' => FLAG_L,
        'm' => FLAG_M,
        's' => FLAG_S,
        'x' => FLAG_X,
        'a' => FLAG_A,
        't' => FLAG_T,
        'u' => FLAG_U,
        _ => return None,
    })
}

/// Largest repeat bound accepted (the matcher unrolls bounded repeats).
pub(crate) const MAX_REPEAT_BOUND: u64 = 1000;
pub(crate) const PY_MAXREPEAT: u64 = 4_294_967_295;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Ch(char),
    Esc(char),
}

impl Tok {
    pub(crate) fn len(self) -> usize {
        match self {
            Tok::Ch(_) => 1,
            Tok::Esc(_) => 2,
        }
    }
}

pub(crate) struct Tokenizer {
    pub(crate) chars: Vec<char>,
    pub(crate) index: usize,
    pub(crate) next: Option<Tok>,
}

impl Tokenizer {
    pub(crate) fn new(s: &str) -> Result<Self, ReError> {
        let mut t = Tokenizer {
            chars: s.chars().collect(),
            index: 0,
            next: None,
        };
        t.advance()?;
        Ok(t)
    }

    pub(crate) fn advance(&mut self) -> Result<(), ReError> {
        let i = self.index;
        match self.chars.get(i) {
            None => self.next = None,
            Some('\\') => match self.chars.get(i + 1) {
                None => return invalid("bad escape (end of pattern)", i),
                Some(&c) => {
                    self.next = Some(Tok::Esc(c));
                    self.index = i + 2;
                }
            },
            Some(&c) => {
                self.next = Some(Tok::Ch(c));
                self.index = i + 1;
            }
        }
        Ok(())
    }

    pub(crate) fn get(&mut self) -> Result<Option<Tok>, ReError> {
        let t = self.next;
        self.advance()?;
        Ok(t)
    }

    pub(crate) fn eat(&mut self, c: char) -> Result<bool, ReError> {
        if self.next == Some(Tok::Ch(c)) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(crate) fn tell(&self) -> usize {
        self.index - self.next.map_or(0, Tok::len)
    }

    pub(crate) fn seek(&mut self, index: usize) -> Result<(), ReError> {
        self.index = index;
        self.advance()
    }

    pub(crate) fn getwhile(
        &mut self,
        n: usize,
        pred: impl Fn(char) -> bool,
    ) -> Result<String, ReError> {
        let mut out = String::new();
        for _ in 0..n {
            match self.next {
                Some(Tok::Ch(c)) if pred(c) => {
                    out.push(c);
                    self.advance()?;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    pub(crate) fn getuntil(&mut self, term: char, name: &str) -> Result<String, ReError> {
        let mut out = String::new();
        loop {
            let c = self.next;
            self.advance()?;
            match c {
                None if out.is_empty() => return invalid(format!("missing {name}"), self.tell()),
                None => {
                    return invalid(
                        format!("missing {term}, unterminated name"),
                        self.tell() - out.chars().count(),
                    );
                }
                Some(Tok::Ch(c)) if c == term => {
                    if out.is_empty() {
                        return invalid(format!("missing {name}"), self.tell() - 1);
                    }
                    return Ok(out);
                }
                Some(Tok::Ch(c)) => out.push(c),
                Some(Tok::Esc(c)) => {
                    out.push('\\');
                    out.push(c);
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cat {
    Digit,
    NotDigit,
    Space,
    NotSpace,
    Word,
    NotWord,
}

impl Cat {
    pub(crate) fn set(self) -> CharSet {
        let t = tables();
        match self {
            Cat::Digit => t.decimal.clone(),
            Cat::NotDigit => t.decimal.complement(),
            Cat::Space => t.space.clone(),
            Cat::NotSpace => t.space.complement(),
            Cat::Word => t.word.clone(),
            Cat::NotWord => t.word.complement(),
        }
    }

    pub(crate) fn from_escape(c: char) -> Option<Cat> {
        Some(match c {
            'd' => Cat::Digit,
            'D' => Cat::NotDigit,
            's' => Cat::Space,
            'S' => Cat::NotSpace,
            'w' => Cat::Word,
            'W' => Cat::NotWord,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetItem {
    Lit(u32),
    Range(u32, u32),
    Cat(Cat),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    Beginning,
    BeginningString,
    Boundary,
    NonBoundary,
    End,
    EndString,
}

/// `re._parser` opcodes (only what is parsed here).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    Lit(u32),
    NotLit(u32),
    Any,
    In {
        negate: bool,
        items: Vec<SetItem>,
    },
    At(At),
    Branch(Vec<Vec<Item>>),
    Repeat {
        min: u64,
        max: Option<u64>,
        lazy: bool,
        possessive: bool,
        body: Vec<Item>,
    },
    Sub {
        group: Option<usize>,
        add: u8,
        del: u8,
        body: Vec<Item>,
    },
    Assert {
        behind: bool,
        negate: bool,
        body: Vec<Item>,
    },
    Atomic,
    GroupRef,
}

pub(crate) struct ParseState {
    pub(crate) flags: u8,
    pub(crate) groups: usize,
    pub(crate) open: Vec<usize>,
    pub(crate) names: HashMap<String, usize>,
}

pub(crate) fn simple_escape(c: char) -> Option<u32> {
    Some(match c {
        'a' => 7,
        'f' => 12,
        'n' => 10,
        'r' => 13,
        't' => 9,
        'v' => 11,
        '\\' => 92,
        _ => return None,
    })
}

pub(crate) fn hex_escape(src: &mut Tokenizer, c: char, at: usize) -> Result<Option<u32>, ReError> {
    let n = match c {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        _ => return Ok(None),
    };
    let digits = src.getwhile(n, |d| d.is_ascii_hexdigit())?;
    if digits.len() != n {
        return invalid(format!("incomplete escape \\{c}{digits}"), at);
    }
    let v = u32::from_str_radix(&digits, 16).unwrap_or(u32::MAX);
    if v > MAX_CP {
        return invalid(format!("bad escape \\{c}{digits}"), at);
    }
    Ok(Some(v))
}

/// `_class_escape`.
pub(crate) fn class_escape(src: &mut Tokenizer, c: char, at: usize) -> Result<SetItem, ReError> {
    if c == 'b' {
        return Ok(SetItem::Lit(8));
    }
    if let Some(v) = simple_escape(c) {
        return Ok(SetItem::Lit(v));
    }
    if let Some(cat) = Cat::from_escape(c) {
        return Ok(SetItem::Cat(cat));
    }
    if let Some(v) = hex_escape(src, c, at)? {
        return Ok(SetItem::Lit(v));
    }
    if c == 'N' {
        return unsupported("a named character escape (\\N{...})");
    }
    if ('0'..='7').contains(&c) {
        let more = src.getwhile(2, |d| ('0'..='7').contains(&d))?;
        let v = u32::from_str_radix(&format!("{c}{more}"), 8).unwrap_or(u32::MAX);
        if v > 0o377 {
            return invalid(
                format!("octal escape value \\{c}{more} outside of range 0-0o377"),
                at,
            );
        }
        return Ok(SetItem::Lit(v));
    }
    if c.is_ascii_alphanumeric() {
        return invalid(format!("bad escape \\{c}"), at);
    }
    Ok(SetItem::Lit(c as u32))
}

/// `_escape` (outside a class).
pub(crate) fn escape(
    src: &mut Tokenizer,
    st: &ParseState,
    c: char,
    at: usize,
) -> Result<Item, ReError> {
    match c {
        'A' => return Ok(Item::At(At::BeginningString)),
        'b' => return Ok(Item::At(At::Boundary)),
        'B' => return Ok(Item::At(At::NonBoundary)),
        'Z' => return Ok(Item::At(At::EndString)),
        _ => {}
    }
    if let Some(cat) = Cat::from_escape(c) {
        return Ok(Item::In {
            negate: false,
            items: vec![SetItem::Cat(cat)],
        });
    }
    if let Some(v) = simple_escape(c) {
        return Ok(Item::Lit(v));
    }
    if let Some(v) = hex_escape(src, c, at)? {
        return Ok(Item::Lit(v));
    }
    if c == 'N' {
        return unsupported("a named character escape (\\N{...})");
    }
    if c == '0' {
        let more = src.getwhile(2, |d| ('0'..='7').contains(&d))?;
        return Ok(Item::Lit(
            u32::from_str_radix(&format!("0{more}"), 8).unwrap_or(0),
        ));
    }
    if c.is_ascii_digit() {
        let mut digits = c.to_string();
        if let Some(Tok::Ch(d)) = src.next
            && d.is_ascii_digit()
        {
            src.advance()?;
            digits.push(d);
            let oct = |x: char| ('0'..='7').contains(&x);
            if oct(c)
                && oct(d)
                && let Some(Tok::Ch(e)) = src.next
                && oct(e)
            {
                src.advance()?;
                digits.push(e);
                let v = u32::from_str_radix(&digits, 8).unwrap_or(u32::MAX);
                if v > 0o377 {
                    return invalid(
                        format!("octal escape value \\{digits} outside of range 0-0o377"),
                        at,
                    );
                }
                return Ok(Item::Lit(v));
            }
        }
        let group: usize = digits.parse().unwrap_or(usize::MAX);
        if group < st.groups {
            if st.open.contains(&group) {
                return invalid("cannot refer to an open group", at);
            }
            return Ok(Item::GroupRef);
        }
        return invalid(format!("invalid group reference {group}"), at + 1);
    }
    if c.is_ascii_alphabetic() {
        return invalid(format!("bad escape \\{c}"), at);
    }
    Ok(Item::Lit(c as u32))
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

pub(crate) fn parse_pattern(pattern: &str, flags: u8) -> Result<(Vec<Item>, u8), ReError> {
    let mut src = Tokenizer::new(pattern)?;
    let mut st = ParseState {
        flags,
        groups: 1,
        open: Vec::new(),
        names: HashMap::new(),
    };
    let items = parse_sub(&mut src, &mut st, 0)?;
    if st.flags & FLAG_L != 0 {
        return Err(ReError::Invalid(
            "cannot use LOCALE flag with a str pattern".into(),
        ));
    }
    if st.flags & FLAG_A != 0 && st.flags & FLAG_U != 0 {
        return Err(ReError::Invalid(
            "ASCII and UNICODE flags are incompatible".into(),
        ));
    }
    if src.next.is_some() {
        return invalid("unbalanced parenthesis", src.tell());
    }
    Ok((items, st.flags))
}

/// Deepest group nesting parsed. Parsing and compiling recurse once per level, so without a
/// bound a long run of `(` in a catalog pattern overflows the stack and aborts the process
/// (webhook, controller, CLI). Python stops near 500 levels with a RecursionError.
pub(crate) const MAX_GROUP_NESTING: usize = 100;

/// `_parse_sub`: an alternation.
pub(crate) fn parse_sub(
    src: &mut Tokenizer,
    st: &mut ParseState,
    nested: usize,
) -> Result<Vec<Item>, ReError> {
    // Each group level adds 2 (`_parse_sub` and `_parse`).
    if nested > 2 * MAX_GROUP_NESTING {
        return unsupported("groups nested more than 100 deep");
    }
    let mut branches = Vec::new();
    loop {
        let first = nested == 0 && branches.is_empty();
        branches.push(parse_seq(src, st, nested + 1, first)?);
        if !src.eat('|')? {
            break;
        }
    }
    if branches.len() == 1 {
        Ok(branches.pop().unwrap_or_default())
    } else {
        Ok(vec![Item::Branch(branches)])
    }
}

/// `_parse`: a sequence.
pub(crate) fn parse_seq(
    src: &mut Tokenizer,
    st: &mut ParseState,
    nested: usize,
    first: bool,
) -> Result<Vec<Item>, ReError> {
    let mut sub: Vec<Item> = Vec::new();
    loop {
        let this = match src.next {
            None | Some(Tok::Ch('|')) | Some(Tok::Ch(')')) => break,
            Some(t) => t,
        };
        let at = src.tell();
        src.advance()?;
        match this {
            Tok::Esc(c) => sub.push(escape(src, st, c, at)?),
            Tok::Ch(c) if !".\\[{()*+?^$|".contains(c) => sub.push(Item::Lit(c as u32)),
            Tok::Ch('[') => sub.push(parse_class(src, at)?),
            Tok::Ch(c @ ('*' | '+' | '?' | '{')) => {
                let here = src.tell();
                let (min, max) = match c {
                    '?' => (0, Some(1)),
                    '*' => (0, None),
                    '+' => (1, None),
                    _ => {
                        if src.next == Some(Tok::Ch('}')) {
                            sub.push(Item::Lit('{' as u32));
                            continue;
                        }
                        let lo = src.getwhile(usize::MAX, |d| d.is_ascii_digit())?;
                        let hi = if src.eat(',')? {
                            src.getwhile(usize::MAX, |d| d.is_ascii_digit())?
                        } else {
                            lo.clone()
                        };
                        if !src.eat('}')? {
                            sub.push(Item::Lit('{' as u32));
                            src.seek(here)?;
                            continue;
                        }
                        let num = |s: &str| -> Result<u64, ReError> {
                            match s.parse::<u64>() {
                                Ok(v) if v < PY_MAXREPEAT => Ok(v),
                                _ => Err(ReError::Invalid(
                                    "the repetition number is too large".into(),
                                )),
                            }
                        };
                        let min = if lo.is_empty() { 0 } else { num(&lo)? };
                        let max = if hi.is_empty() { None } else { Some(num(&hi)?) };
                        if let Some(m) = max
                            && m < min
                        {
                            return invalid("min repeat greater than max repeat", here);
                        }
                        (min, max)
                    }
                };
                let item = match sub.last() {
                    None | Some(Item::At(_)) => return invalid("nothing to repeat", here - 1),
                    Some(Item::Repeat { .. }) => return invalid("multiple repeat", here - 1),
                    Some(_) => sub.pop().unwrap_or(Item::Atomic),
                };
                let body = match item {
                    Item::Sub {
                        group: None,
                        add: 0,
                        del: 0,
                        body,
                    } => body,
                    other => vec![other],
                };
                let lazy = src.eat('?')?;
                let possessive = !lazy && src.eat('+')?;
                sub.push(Item::Repeat {
                    min,
                    max,
                    lazy,
                    possessive,
                    body,
                });
            }
            Tok::Ch('.') => sub.push(Item::Any),
            Tok::Ch('(') => {
                if let Some(item) = parse_group(src, st, nested, first && sub.is_empty(), at)? {
                    sub.push(item);
                }
            }
            Tok::Ch('^') => sub.push(Item::At(At::Beginning)),
            Tok::Ch('$') => sub.push(Item::At(At::End)),
            Tok::Ch(c) => return invalid(format!("unsupported special character {c:?}"), at),
        }
    }
    // Non-capturing groups without flags are spliced into the sequence.
    let mut out = Vec::with_capacity(sub.len());
    for item in sub {
        match item {
            Item::Sub {
                group: None,
                add: 0,
                del: 0,
                body,
            } => out.extend(body),
            other => out.push(other),
        }
    }
    Ok(out)
}

pub(crate) fn parse_class(src: &mut Tokenizer, here: usize) -> Result<Item, ReError> {
    let mut set: Vec<SetItem> = Vec::new();
    let negate = src.eat('^')?;
    loop {
        let at = src.tell();
        let this = match src.get()? {
            None => return invalid("unterminated character set", here),
            Some(t) => t,
        };
        if this == Tok::Ch(']') && !set.is_empty() {
            break;
        }
        let code1 = match this {
            Tok::Esc(c) => class_escape(src, c, at)?,
            Tok::Ch(c) => SetItem::Lit(c as u32),
        };
        if src.eat('-')? {
            let at2 = src.tell();
            let that = match src.get()? {
                None => return invalid("unterminated character set", here),
                Some(t) => t,
            };
            if that == Tok::Ch(']') {
                set.push(code1);
                set.push(SetItem::Lit('-' as u32));
                break;
            }
            let code2 = match that {
                Tok::Esc(c) => class_escape(src, c, at2)?,
                Tok::Ch(c) => SetItem::Lit(c as u32),
            };
            match (code1, code2) {
                (SetItem::Lit(lo), SetItem::Lit(hi)) if lo <= hi => {
                    set.push(SetItem::Range(lo, hi))
                }
                _ => return invalid("bad character range", at),
            }
        } else {
            set.push(code1);
        }
    }
    let mut uniq: Vec<SetItem> = Vec::with_capacity(set.len());
    for s in set {
        if !uniq.contains(&s) {
            uniq.push(s);
        }
    }
    Ok(match uniq.as_slice() {
        [SetItem::Lit(c)] if negate => Item::NotLit(*c),
        [SetItem::Lit(c)] => Item::Lit(*c),
        _ => Item::In {
            negate,
            items: uniq,
        },
    })
}

/// `(` … `)`: groups, lookarounds, flags, comments. `None` for a comment or global flags.
pub(crate) fn parse_group(
    src: &mut Tokenizer,
    st: &mut ParseState,
    nested: usize,
    at_start: bool,
    start: usize,
) -> Result<Option<Item>, ReError> {
    let mut capture = true;
    let mut name: Option<String> = None;
    let (mut add, mut del) = (0u8, 0u8);
    if src.eat('?')? {
        let ch = match src.get()? {
            None => return invalid("unexpected end of pattern", src.tell()),
            Some(t) => t,
        };
        match ch {
            Tok::Ch('P') => {
                if src.eat('<')? {
                    let n = src.getuntil('>', "group name")?;
                    if !is_identifier(&n) {
                        return invalid(format!("bad character in group name {n:?}"), src.tell());
                    }
                    name = Some(n);
                } else if src.eat('=')? {
                    let n = src.getuntil(')', "group name")?;
                    if !is_identifier(&n) {
                        return invalid(format!("bad character in group name {n:?}"), src.tell());
                    }
                    return match st.names.get(&n) {
                        None => invalid(format!("unknown group name {n:?}"), src.tell()),
                        Some(g) if st.open.contains(g) => {
                            invalid("cannot refer to an open group", src.tell())
                        }
                        Some(_) => Ok(Some(Item::GroupRef)),
                    };
                } else {
                    return invalid("unknown extension ?P", src.tell());
                }
            }
            Tok::Ch(':') => capture = false,
            Tok::Ch('#') => loop {
                if src.next.is_none() {
                    return invalid("missing ), unterminated comment", start);
                }
                if src.get()? == Some(Tok::Ch(')')) {
                    return Ok(None);
                }
            },
            Tok::Ch(c @ ('=' | '!' | '<')) => {
                let (behind, kind) = if c == '<' {
                    match src.get()? {
                        Some(Tok::Ch(k @ ('=' | '!'))) => (true, k),
                        None => return invalid("unexpected end of pattern", src.tell()),
                        Some(_) => return invalid("unknown extension ?<", src.tell()),
                    }
                } else {
                    (false, c)
                };
                let body = parse_sub(src, st, nested + 1)?;
                if !src.eat(')')? {
                    return invalid("missing ), unterminated subpattern", start);
                }
                return Ok(Some(Item::Assert {
                    behind,
                    negate: kind == '!',
                    body,
                }));
            }
            Tok::Ch('(') => {
                // Conditional backreference group: validate the rest loosely, then refuse.
                return unsupported("a conditional group (?(id)yes|no)");
            }
            Tok::Ch('>') => {
                let _ = parse_sub(src, st, nested + 1)?;
                if !src.eat(')')? {
                    return invalid("missing ), unterminated subpattern", start);
                }
                return Ok(Some(Item::Atomic));
            }
            Tok::Ch(c) if flag_bit(c).is_some() || c == '-' => match parse_flags(src, st, c)? {
                None => {
                    if !at_start {
                        return invalid("global flags not at the start of the expression", start);
                    }
                    if st.flags & FLAG_X != 0 {
                        return unsupported("verbose mode (?x)");
                    }
                    return Ok(None);
                }
                Some((a, _)) if a & FLAG_X != 0 => return unsupported("verbose mode (?x)"),
                Some((a, d)) => {
                    add = a;
                    del = d;
                    capture = false;
                }
            },
            Tok::Ch(c) | Tok::Esc(c) => {
                return invalid(format!("unknown extension ?{c}"), src.tell());
            }
        }
    }
    let group = if capture {
        let gid = st.groups;
        st.groups += 1;
        if let Some(n) = &name {
            if st.names.contains_key(n) {
                return invalid(format!("redefinition of group name {n:?}"), start);
            }
            st.names.insert(n.clone(), gid);
        }
        st.open.push(gid);
        Some(gid)
    } else {
        None
    };
    let body = parse_sub(src, st, nested + 1)?;
    if !src.eat(')')? {
        return invalid("missing ), unterminated subpattern", start);
    }
    if let Some(g) = group {
        st.open.retain(|&x| x != g);
    }
    Ok(Some(Item::Sub {
        group,
        add,
        del,
        body,
    }))
}

/// `_parse_flags`: `Some((add, del))` for a scoped group, `None` for global flags.
pub(crate) fn parse_flags(
    src: &mut Tokenizer,
    st: &mut ParseState,
    mut ch: char,
) -> Result<Option<(u8, u8)>, ReError> {
    let mut add = 0u8;
    let mut del = 0u8;
    if ch != '-' {
        loop {
            let flag = flag_bit(ch).unwrap_or(0);
            if ch == 'L' {
                return invalid(
                    "bad inline flags: cannot use 'L' flag with a str pattern",
                    src.tell(),
                );
            }
            add |= flag;
            if flag & TYPE_FLAGS != 0 && add & TYPE_FLAGS != flag {
                return invalid(
                    "bad inline flags: flags 'a', 'u' and 'L' are incompatible",
                    src.tell(),
                );
            }
            ch = match src.get()? {
                None => return invalid("missing -, : or )", src.tell()),
                Some(Tok::Ch(c)) => c,
                Some(Tok::Esc(_)) => return invalid("missing -, : or )", src.tell()),
            };
            if ")-:".contains(ch) {
                break;
            }
            if flag_bit(ch).is_none() {
                let msg = if ch.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing -, : or )"
                };
                return invalid(msg, src.tell());
            }
        }
    }
    if ch == ')' {
        st.flags |= add;
        return Ok(None);
    }
    if add & FLAG_T != 0 {
        return invalid("bad inline flags: cannot turn on global flag", src.tell());
    }
    if ch == '-' {
        ch = match src.get()? {
            None => return invalid("missing flag", src.tell()),
            Some(Tok::Ch(c)) => c,
            Some(Tok::Esc(_)) => return invalid("missing flag", src.tell()),
        };
        if flag_bit(ch).is_none() {
            let msg = if ch.is_alphabetic() {
                "unknown flag"
            } else {
                "missing flag"
            };
            return invalid(msg, src.tell());
        }
        loop {
            let flag = flag_bit(ch).unwrap_or(0);
            if flag & TYPE_FLAGS != 0 {
                return invalid(
                    "bad inline flags: cannot turn off flags 'a', 'u' and 'L'",
                    src.tell(),
                );
            }
            del |= flag;
            ch = match src.get()? {
                None => return invalid("missing :", src.tell()),
                Some(Tok::Ch(c)) => c,
                Some(Tok::Esc(_)) => return invalid("missing :", src.tell()),
            };
            if ch == ':' {
                break;
            }
            if flag_bit(ch).is_none() {
                let msg = if ch.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing :"
                };
                return invalid(msg, src.tell());
            }
        }
    }
    if del & FLAG_T != 0 {
        return invalid("bad inline flags: cannot turn off global flag", src.tell());
    }
    if add & del != 0 {
        return invalid("bad inline flags: flag turned on and off", src.tell());
    }
    Ok(Some((add, del)))
}

/// `SubPattern.getwidth` (code points), saturating.
pub(crate) fn width(items: &[Item]) -> (u64, u64) {
    const MAXW: u64 = u64::MAX;
    let mut lo: u64 = 0;
    let mut hi: u64 = 0;
    for item in items {
        let (i, j) = match item {
            Item::Branch(bs) => {
                let ws: Vec<(u64, u64)> = bs.iter().map(|b| width(b)).collect();
                (
                    ws.iter().map(|w| w.0).min().unwrap_or(0),
                    ws.iter().map(|w| w.1).max().unwrap_or(0),
                )
            }
            Item::Sub { body, .. } => width(body),
            Item::Repeat { min, max, body, .. } => {
                let (i, j) = width(body);
                let lo_add = i.saturating_mul(*min);
                match max {
                    None if j > 0 => {
                        lo = lo.saturating_add(lo_add);
                        hi = MAXW;
                        continue;
                    }
                    None => (lo_add, 0),
                    Some(m) => (lo_add, j.saturating_mul(*m)),
                }
            }
            Item::Lit(_) | Item::NotLit(_) | Item::Any | Item::In { .. } => (1, 1),
            Item::At(_) | Item::Assert { .. } => (0, 0),
            Item::Atomic | Item::GroupRef => (0, MAXW),
        };
        lo = lo.saturating_add(i);
        hi = hi.saturating_add(j);
    }
    (lo, hi)
}
