//! The per-text algorithm (LiteLLM's `_filter_single_text`): categories, patterns, blocked
//! words, in LiteLLM's order.

use std::sync::OnceLock;

use super::*;
use crate::engine::pyre::*;

// ─────────────────────────────────────────────────────────────────────────────
// The per-text algorithm (`_filter_single_text`)
// ─────────────────────────────────────────────────────────────────────────────

/// A masked span (`_RedactionSpan`); `index` is the pattern's position in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) index: usize,
}

/// The text with some spans replaced by tags (`_RedactedText`), with position mapping back.
pub(crate) struct Redacted<'a> {
    pub(crate) spans: &'a [Span],
    pub(crate) tags: Vec<String>,
    pub(crate) tag_starts: Vec<usize>,
}

impl Redacted<'_> {
    pub(crate) fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut prev = 0;
        for (span, tag) in self.spans.iter().zip(&self.tags) {
            out.push_str(&text[prev..span.start]);
            out.push_str(tag);
            prev = span.end;
        }
        out.push_str(&text[prev..]);
        out
    }

    pub(crate) fn original_start(&self, position: usize) -> usize {
        let idx = self.tag_starts.partition_point(|&t| t <= position);
        if idx == 0 {
            return position;
        }
        let i = idx - 1;
        let tag_end = self.tag_starts[i] + self.tags[i].len();
        if position < tag_end {
            self.spans[i].start
        } else {
            position - tag_end + self.spans[i].end
        }
    }

    pub(crate) fn original_end(&self, position: usize) -> usize {
        let idx = self.tag_starts.partition_point(|&t| t < position);
        if idx == 0 {
            return position;
        }
        let i = idx - 1;
        let tag_end = self.tag_starts[i] + self.tags[i].len();
        if position <= tag_end {
            self.spans[i].end
        } else {
            position - tag_end + self.spans[i].end
        }
    }
}

/// `_merge_redaction_spans`: ordered by start (longer first), overlapping spans form one group
/// named after its first span; touching spans stay separate.
pub(crate) fn merge_redaction_spans(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    let mut reach = 0;
    for (i, s) in spans.into_iter().enumerate() {
        let end = s.end;
        match out.last_mut() {
            Some(last) if i > 0 && s.start < reach => last.end = last.end.max(end),
            _ => out.push(s),
        }
        reach = reach.max(end);
    }
    out
}

/// `_merge_spans`: one pattern's spans, overlapping or touching ones merged.
pub(crate) fn merge_spans(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_by_key(|s| s.0);
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `_gap_text_allowed`: whitespace only, or no digit and at most one word.
pub(crate) fn gap_allowed(gap: &str) -> bool {
    if py_strip(gap).is_empty() {
        return true;
    }
    if gap.chars().any(pychar::is_digit) {
        return false;
    }
    // `len(re.findall(r"\b\w+\b", gap))`: the number of maximal runs of word characters.
    let mut words = 0;
    let mut in_word = false;
    for c in gap.chars() {
        let w = pychar::is_word(c);
        if w && !in_word {
            words += 1;
        }
        in_word = w;
    }
    words <= 1
}

/// `_match_near_keyword`.
pub(crate) fn near_keyword(
    start: usize,
    end: usize,
    keywords: &[(usize, usize)],
    text: &str,
) -> bool {
    keywords.iter().any(|&(ks, ke)| {
        let gap = if start >= ke {
            &text[ke..start]
        } else if ks >= end {
            &text[end..ks]
        } else {
            return true;
        };
        gap_allowed(gap)
    })
}

pub(crate) const WORD_NUMBERS: [(&str, char); 11] = [
    ("zero", '0'),
    ("oh", '0'),
    ("one", '1'),
    ("two", '2'),
    ("three", '3'),
    ("four", '4'),
    ("five", '5'),
    ("six", '6'),
    ("seven", '7'),
    ("eight", '8'),
    ("nine", '9'),
];

pub(crate) struct WordNumberRegexes {
    pub(crate) sequence: PyRegex,
    pub(crate) token: PyRegex,
}

pub(crate) fn word_number_regexes() -> Option<&'static WordNumberRegexes> {
    static R: OnceLock<Option<WordNumberRegexes>> = OnceLock::new();
    R.get_or_init(|| {
        let tokens = WORD_NUMBERS
            .iter()
            .map(|(w, _)| *w)
            .collect::<Vec<_>>()
            .join("|");
        let sequence = format!(r"(?<![A-Za-z])(?:{tokens})(?:[\s\-]+(?:{tokens}))+(?![A-Za-z])");
        Some(WordNumberRegexes {
            sequence: PyRegex::new(&sequence, true).ok()?,
            token: PyRegex::new(&format!("(?:{tokens})"), true).ok()?,
        })
    })
    .as_ref()
}

/// `_convert_word_number_sequence`.
pub(crate) fn word_number_digits(token_re: &PyRegex, sequence: &str) -> Option<String> {
    let mut digits = String::new();
    for (s, e) in token_re.find_iter(sequence) {
        let token = sequence[s..e].to_lowercase();
        let (_, d) = WORD_NUMBERS.iter().find(|(w, _)| *w == token)?;
        digits.push(*d);
    }
    (!digits.is_empty()).then_some(digits)
}

/// `re.split(r"[.!?]+", text)`.
pub(crate) fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_run = false;
    for (i, c) in text.char_indices() {
        let term = matches!(c, '.' | '!' | '?');
        if term && !in_run {
            out.push(&text[start..i]);
        }
        if !term && in_run {
            start = i;
        }
        in_run = term;
    }
    out.push(if in_run { "" } else { &text[start..] });
    out
}

pub(crate) fn pattern_blocked(name: &str) -> Blocked {
    Blocked {
        fields: vec![
            (
                "error",
                Some(format!("Content blocked: {name} pattern detected")),
            ),
            ("pattern", Some(name.to_string())),
        ],
    }
}

pub(crate) fn conditional_blocked(category: &str, phrase: &str) -> Blocked {
    Blocked {
        fields: vec![
            (
                "error",
                Some(format!(
                    "Content blocked: {category} conditional match '{phrase}' detected (severity: high)"
                )),
            ),
            ("category", Some(category.to_string())),
            ("matched_phrase", Some(phrase.to_string())),
            ("severity", Some("high".to_string())),
        ],
    }
}

impl ContentFilter {
    /// `_filter_single_text`: the text as LiteLLM returns it (masked), or its BLOCK.
    pub fn filter_text(&self, text: &str) -> Result<String, FilterError> {
        let mut text = text.to_string();
        let lower = text.to_lowercase();
        let excepted = self
            .categories
            .values()
            .flat_map(|c| c.exceptions.iter())
            .any(|e| lower.contains(e.as_str()));
        if !excepted {
            if let Some((phrase, category, Action::Block)) = self.check_conditionals(&text) {
                return Err(conditional_blocked(category, &phrase).into());
            }
            if let Some((phrase, category, Action::Block)) = self.check_phrase_patterns(&text) {
                return Err(conditional_blocked(category, &phrase).into());
            }
            if let Some(kw) = self.check_category_keywords(&lower)? {
                match kw.action {
                    Action::Block => {
                        return Err(Blocked {
                            fields: vec![
                                (
                                    "error",
                                    Some(format!(
                                        "Content blocked: {} category keyword '{}' detected (severity: {})",
                                        kw.category, kw.keyword.keyword, kw.severity
                                    )),
                                ),
                                ("category", Some(kw.category.clone())),
                                ("keyword", Some(kw.keyword.keyword.clone())),
                                ("severity", Some(kw.severity.clone())),
                            ],
                        }
                        .into());
                    }
                    Action::Mask => {
                        text = kw.keyword.mask(&text).map_err(FilterError::Internal)?;
                    }
                }
            }
        }

        text = self.apply_patterns(&text)?;

        let mut lower = text.to_lowercase();
        for (_, w) in self.blocked_words.iter() {
            if !w.keyword.found_in(&lower).map_err(FilterError::Internal)? {
                continue;
            }
            match w.action {
                Action::Block => {
                    let kw = &w.keyword.keyword;
                    let mut error = format!("Content blocked: keyword '{kw}' detected");
                    if let Some(d) = w.description.as_deref().filter(|d| !d.is_empty()) {
                        error.push_str(&format!(" ({d})"));
                    }
                    return Err(Blocked {
                        fields: vec![
                            ("error", Some(error)),
                            ("keyword", Some(kw.clone())),
                            ("description", w.description.clone()),
                        ],
                    }
                    .into());
                }
                Action::Mask => {
                    text = w.keyword.mask(&text).map_err(FilterError::Internal)?;
                    lower = text.to_lowercase();
                }
            }
        }
        Ok(text)
    }

    /// `_check_conditional_categories` (exceptions already checked).
    pub(crate) fn check_conditionals(&self, text: &str) -> Option<(String, &str, Action)> {
        if self.conditionals.len() == 0 {
            return None;
        }
        let sentences: Vec<String> = split_sentences(text)
            .into_iter()
            .map(|s| py_strip(&s.to_lowercase()).to_string())
            .collect();
        for (name, cond) in self.conditionals.iter() {
            for sentence in sentences.iter().filter(|s| !s.is_empty()) {
                let Some(ident) = cond
                    .identifier_words
                    .iter()
                    .find(|w| sentence.contains(w.as_str()))
                else {
                    continue;
                };
                let block = cond.block_words.iter().find(|bw| {
                    if bw.contains(' ') {
                        sentence.contains(bw.as_str())
                    } else {
                        contains_word_bounded(sentence, bw)
                    }
                });
                if let Some(bw) = block {
                    return Some((format!("{ident} + {bw}"), name.as_str(), cond.action));
                }
            }
        }
        None
    }

    /// `_check_phrase_patterns` (exceptions already checked).
    pub(crate) fn check_phrase_patterns(&self, text: &str) -> Option<(String, &str, Action)> {
        for (name, cat) in self.categories.iter() {
            if cat.phrase_patterns.is_empty() {
                continue;
            }
            let action = match self.conditionals.get(name) {
                Some(c) => c.action,
                None => cat.default_action,
            };
            for (source, regex) in &cat.phrase_patterns {
                if regex.search(text) {
                    return Some((format!("phrase: {source}"), name.as_str(), action));
                }
            }
        }
        None
    }

    /// `_check_category_keywords` (exceptions already checked): the first match, always-block
    /// keywords first.
    pub(crate) fn check_category_keywords(
        &self,
        text_lower: &str,
    ) -> Result<Option<&CategoryKeyword>, FilterError> {
        for (_, kw) in self
            .always_block
            .iter()
            .chain(self.category_keywords.iter())
        {
            if kw
                .keyword
                .found_in(text_lower)
                .map_err(FilterError::Internal)?
            {
                return Ok(Some(kw));
            }
        }
        Ok(None)
    }

    pub(crate) fn redacted<'a>(&self, spans: &'a [Span]) -> Redacted<'a> {
        let tags: Vec<String> = spans
            .iter()
            .map(|s| format!("[{}_REDACTED]", self.patterns[s.index].name.to_uppercase()))
            .collect();
        let mut tag_starts = Vec::with_capacity(spans.len());
        let mut shift: isize = 0;
        for (s, tag) in spans.iter().zip(&tags) {
            tag_starts.push((s.start as isize + shift) as usize);
            shift += tag.len() as isize - (s.end - s.start) as isize;
        }
        Redacted {
            spans,
            tags,
            tag_starts,
        }
    }

    /// `_find_pattern_spans`.
    pub(crate) fn find_pattern_spans(&self, text: &str, rule: &PatternRule) -> Vec<(usize, usize)> {
        let keywords = rule.keyword.as_ref().map(|k| k.find_iter(text));
        if let Some(k) = &keywords
            && k.is_empty()
        {
            return Vec::new();
        }
        let near = |s: usize, e: usize| {
            keywords
                .as_ref()
                .is_none_or(|k| near_keyword(s, e, k, text))
        };
        let mut spans: Vec<(usize, usize)> = rule
            .regex
            .find_iter(text)
            .into_iter()
            .filter(|&(s, e)| near(s, e))
            .collect();
        if rule.word_numbers
            && let Some(wn) = word_number_regexes()
        {
            for (s, e) in wn.sequence.find_iter(text) {
                let Some(digits) = word_number_digits(&wn.token, &text[s..e]) else {
                    continue;
                };
                if rule.regex.fullmatch(&digits) && near(s, e) {
                    spans.push((s, e));
                }
            }
        }
        merge_spans(spans)
    }

    /// `_mask_step`: add one MASK pattern's spans (in the text and in the text with the earlier
    /// masks applied) to the masking plan.
    pub(crate) fn mask_step(&self, text: &str, spans: &[Span], index: usize) -> Vec<Span> {
        let rule = &self.patterns[index];
        let mut all: Vec<Span> = spans.to_vec();
        let original = self.find_pattern_spans(text, rule);
        all.extend(
            original
                .into_iter()
                .map(|(start, end)| Span { start, end, index }),
        );
        if !spans.is_empty() {
            let r = self.redacted(spans);
            let rendered = r.render(text);
            for (s, e) in self.find_pattern_spans(&rendered, rule) {
                all.push(Span {
                    start: r.original_start(s),
                    end: r.original_end(e),
                    index,
                });
            }
        }
        merge_redaction_spans(all)
    }

    /// Regex patterns: the masking plan, then the block check, then the masked text.
    pub(crate) fn apply_patterns(&self, text: &str) -> Result<String, FilterError> {
        if self.patterns.is_empty() {
            return Ok(text.to_string());
        }
        let mut states: Vec<Vec<Span>> = Vec::with_capacity(self.patterns.len() + 1);
        states.push(Vec::new());
        for (i, rule) in self.patterns.iter().enumerate() {
            let prev = states.last().map(Vec::as_slice).unwrap_or(&[]);
            let next = match rule.action {
                Action::Mask => self.mask_step(text, prev, i),
                Action::Block => prev.to_vec(),
            };
            states.push(next);
        }
        for (i, rule) in self.patterns.iter().enumerate() {
            if rule.action == Action::Block {
                let rendered = self.redacted(&states[i]).render(text);
                if !self.find_pattern_spans(&rendered, rule).is_empty() {
                    return Err(pattern_blocked(&rule.name).into());
                }
            }
        }
        let last = states.last().map(Vec::as_slice).unwrap_or(&[]);
        Ok(self.redacted(last).render(text))
    }
}
