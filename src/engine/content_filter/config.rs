//! The guardrail's configuration from a catalog entry's `litellm_params`, with LiteLLM's
//! load-time quirks.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::*;
use crate::engine::pyre::*;

// ─────────────────────────────────────────────────────────────────────────────
// Configuration
// ─────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Block,
    Mask,
}

impl Action {
    pub(crate) fn parse(v: &Value, what: &str) -> Result<Action, String> {
        match v.as_str() {
            Some("BLOCK") => Ok(Action::Block),
            Some("MASK") => Ok(Action::Mask),
            _ => Err(format!(
                "{what}: action must be \"BLOCK\" or \"MASK\" (upper case), got {v}"
            )),
        }
    }
}

/// The hooks LiteLLM accepts for this guardrail (`supported_event_hooks` plus `logging_only`).
pub(crate) const HOOKS: &[&str] = &[
    "pre_call",
    "post_call",
    "during_call",
    "logging_only",
    "pre_mcp_call",
    "post_mcp_call",
    "realtime_input_transcription",
];

pub(crate) const ALL_EVENT_HOOKS: &[&str] = &[
    "pre_call",
    "post_call",
    "during_call",
    "logging_only",
    "pre_mcp_call",
    "during_mcp_call",
    "post_mcp_call",
    "realtime_input_transcription",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamScope {
    Both,
    Streaming,
    NonStreaming,
}

impl StreamScope {
    pub(crate) fn parse(v: &Value) -> Option<StreamScope> {
        match v.as_str()? {
            "both" => Some(StreamScope::Both),
            "streaming" => Some(StreamScope::Streaming),
            "non_streaming" => Some(StreamScope::NonStreaming),
            _ => None,
        }
    }
}

pub(crate) fn opt_bool(
    params: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<bool>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("{key} must be true, false or null, got {v}")),
    }
}

pub(crate) fn opt_str<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("{what}: {key} must be a string, got {v}")),
    }
}

pub(crate) fn opt_list<'a>(
    params: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(format!("{key} must be a list, got {v}")),
    }
}

/// A Python dict keyed by string: re-inserting a key keeps its first position and takes the new
/// value.
#[derive(Clone, Debug)]
pub(crate) struct PyDict<V> {
    pub(crate) entries: Vec<(String, V)>,
    pub(crate) index: HashMap<String, usize>,
}

impl<V> Default for PyDict<V> {
    fn default() -> Self {
        PyDict {
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<V> PyDict<V> {
    pub(crate) fn insert(&mut self, key: String, value: V) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One regex pattern rule (prebuilt or custom).
#[derive(Debug)]
pub(crate) struct PatternRule {
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) regex: Arc<PyRegex>,
    pub(crate) keyword: Option<Arc<PyRegex>>,
    pub(crate) word_numbers: bool,
}

/// How a keyword is searched for in lower-cased text.
#[derive(Debug)]
pub(crate) enum KeywordMatcher {
    /// A plain substring.
    Substring(String),
    /// `\b` + literal + `\b` (Python word boundaries).
    Word(String),
    /// Anything else (a keyword with `*`).
    Regex(PyRegex),
}

impl KeywordMatcher {
    /// `re.escape(keyword)` with each escaped `*` turned into `.?`, optionally in `\b…\b`.
    pub(crate) fn new(keyword: &str, word_bounded: bool) -> Result<Self, ReError> {
        let escaped = py_re_escape(keyword);
        let pattern = escaped.replace("\\*", ".?");
        if pattern == escaped {
            return Ok(if word_bounded {
                KeywordMatcher::Word(keyword.to_string())
            } else {
                KeywordMatcher::Substring(keyword.to_string())
            });
        }
        let pattern = if word_bounded {
            format!("\\b{pattern}\\b")
        } else {
            pattern
        };
        PyRegex::new(&pattern, false).map(KeywordMatcher::Regex)
    }

    pub(crate) fn is_match(&self, text_lower: &str) -> bool {
        match self {
            KeywordMatcher::Substring(s) => text_lower.contains(s.as_str()),
            KeywordMatcher::Word(s) => contains_word_bounded(text_lower, s),
            KeywordMatcher::Regex(r) => r.search(text_lower),
        }
    }
}

/// A keyword with its lazily built matchers: detection on lower-cased text and the
/// case-insensitive masking regex (no word boundaries).
#[derive(Debug)]
pub(crate) struct Keyword {
    pub(crate) keyword: String,
    pub(crate) word_bounded: bool,
    pub(crate) detect: OnceLock<Result<KeywordMatcher, ReError>>,
    pub(crate) mask: OnceLock<Result<PyRegex, ReError>>,
}

impl Keyword {
    pub(crate) fn new(keyword: String, word_bounded: bool) -> Self {
        Keyword {
            keyword,
            word_bounded,
            detect: OnceLock::new(),
            mask: OnceLock::new(),
        }
    }

    pub(crate) fn found_in(&self, text_lower: &str) -> Result<bool, String> {
        match self
            .detect
            .get_or_init(|| KeywordMatcher::new(&self.keyword, self.word_bounded))
        {
            Ok(m) => Ok(m.is_match(text_lower)),
            Err(e) => Err(e.describe(&self.keyword)),
        }
    }

    /// `re.sub(keyword_regex, tag, text, flags=re.IGNORECASE)`.
    pub(crate) fn mask(&self, text: &str) -> Result<String, String> {
        match self
            .mask
            .get_or_init(|| PyRegex::new(&py_re_escape(&self.keyword).replace("\\*", ".?"), true))
        {
            Ok(r) => Ok(r.sub(text, KEYWORD_TAG)),
            Err(e) => Err(e.describe(&self.keyword)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct BlockedWord {
    pub(crate) keyword: Keyword,
    pub(crate) action: Action,
    pub(crate) description: Option<String>,
}

#[derive(Debug)]
pub(crate) struct CategoryKeyword {
    pub(crate) keyword: Keyword,
    pub(crate) category: String,
    pub(crate) severity: String,
    pub(crate) action: Action,
}

/// A category file as loaded (`CategoryConfig`).
#[derive(Debug)]
pub(crate) struct LoadedCategory {
    pub(crate) default_action: Action,
    pub(crate) exceptions: Vec<String>,
    pub(crate) identifier_words: Vec<String>,
    pub(crate) always_block_keywords: Vec<Value>,
    /// `None` when the file says `keywords: null` (LiteLLM's loop then fails).
    pub(crate) keywords: Option<Vec<Value>>,
    pub(crate) inherit_from: Option<String>,
    pub(crate) additional_block_words: Vec<String>,
    pub(crate) phrase_patterns: Vec<(String, Arc<PyRegex>)>,
}

#[derive(Debug)]
pub(crate) struct Conditional {
    pub(crate) identifier_words: Vec<String>,
    pub(crate) block_words: Vec<String>,
    pub(crate) action: Action,
}

/// A `litellm_content_filter` guardrail built from a catalog entry.
#[derive(Debug)]
pub struct ContentFilter {
    pub(crate) name: String,
    pub(crate) hooks: Vec<String>,
    pub(crate) scope_default: StreamScope,
    pub(crate) scope_by_hook: Vec<(String, StreamScope)>,
    pub(crate) skip_system: bool,
    pub(crate) skip_tool: bool,
    pub(crate) only_tool_results: bool,
    pub(crate) patterns: Vec<PatternRule>,
    pub(crate) blocked_words: PyDict<BlockedWord>,
    pub(crate) categories: PyDict<LoadedCategory>,
    pub(crate) conditionals: PyDict<Conditional>,
    pub(crate) always_block: PyDict<CategoryKeyword>,
    pub(crate) category_keywords: PyDict<CategoryKeyword>,
    pub(crate) warnings: Vec<String>,
}

/// A BLOCK: LiteLLM's `HTTPException(400, detail={...})`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub(crate) fields: Vec<(&'static str, Option<String>)>,
}

impl Blocked {
    /// The detail's `error` string (what the client sees as the message).
    pub fn error(&self) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| *k == "error")
            .and_then(|(_, v)| v.as_deref())
            .unwrap_or("")
    }

    /// Python's `str(detail)`: what LiteLLM's pipeline records as the step's error detail.
    pub fn python_str(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&py_repr_str(k));
            out.push_str(": ");
            match v {
                Some(s) => out.push_str(&py_repr_str(s)),
                None => out.push_str("None"),
            }
        }
        out.push('}');
        out
    }

    /// The detail as JSON (`null` for Python's `None`).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.fields {
            m.insert(
                (*k).to_string(),
                v.clone().map(Value::String).unwrap_or(Value::Null),
            );
        }
        Value::Object(m)
    }
}

/// What filtering one text produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    Blocked(Blocked),
    /// An internal failure (a keyword regex could not be built).
    Internal(String),
}

impl From<Blocked> for FilterError {
    fn from(b: Blocked) -> Self {
        FilterError::Blocked(b)
    }
}

impl ContentFilter {
    /// Build from a catalog entry (`{guardrail_name, litellm_params}`).
    pub fn from_entry(entry: &Value, files: &CategoryData) -> Result<ContentFilter, String> {
        let name = entry
            .get("guardrail_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let params = entry.get("litellm_params").unwrap_or(&Value::Null);
        Self::from_params(name, params, files)
    }

    /// Build from a guardrail name and its `litellm_params`, as LiteLLM's config loader does.
    pub fn from_params(
        name: &str,
        params: &Value,
        files: &CategoryData,
    ) -> Result<ContentFilter, String> {
        if name.is_empty() {
            return Err("Content Filter: guardrail_name is required".into());
        }
        let params = params
            .as_object()
            .ok_or_else(|| "litellm_params must be a mapping".to_string())?;
        match params.get("guardrail") {
            Some(Value::String(g)) if g == KIND => {}
            Some(v) => return Err(format!("guardrail must be {KIND:?}, got {v}")),
            None => return Err("guardrail_type is required".into()),
        }
        let hooks = parse_mode(params.get("mode"))?;
        let (scope_default, scope_by_hook) = parse_stream_scope(params.get("stream_scope"));
        let skip_system = opt_bool(params, "skip_system_message_in_guardrail")?.unwrap_or(false);
        let skip_tool = opt_bool(params, "skip_tool_message_in_guardrail")?.unwrap_or(false);
        let only_tool_results = opt_bool(params, "scan_only_tool_results")? == Some(true);
        if only_tool_results && skip_tool {
            return Err(format!(
                "Guardrail {name}: scan_only_tool_results and skip_tool_message_in_guardrail are enabled together, which excludes every message from scanning, so no request content would ever be scanned. Remove one of the two."
            ));
        }
        if opt_bool(params, "scan_raw_request")? == Some(true) {
            return Err(
                "scan_raw_request: true is not supported (the raw pre-pipeline request is not available to offline tests)"
                    .into(),
            );
        }
        match params.get("competitor_intent_config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) if o.is_empty() => {}
            Some(_) => {
                return Err(
                    "competitor_intent_config is not supported by the offline content filter"
                        .into(),
                );
            }
        }
        for key in ["pattern_redaction_format", "keyword_redaction_tag"] {
            opt_str(params, key, "litellm_params")?;
        }

        let mut filter = ContentFilter {
            name: name.to_string(),
            hooks,
            scope_default,
            scope_by_hook,
            skip_system,
            skip_tool,
            only_tool_results,
            patterns: Vec::new(),
            blocked_words: PyDict::default(),
            categories: PyDict::default(),
            conditionals: PyDict::default(),
            always_block: PyDict::default(),
            category_keywords: PyDict::default(),
            warnings: Vec::new(),
        };

        // Same order as ContentFilterGuardrail.__init__: categories, patterns, blocked words,
        // then the blocked-words file.
        let categories = opt_list(params, "categories")?;
        let category_configs = categories
            .iter()
            .map(parse_category_config)
            .collect::<Result<Vec<_>, _>>()?;
        for cfg in &category_configs {
            filter.load_category(cfg, files)?;
        }
        for (i, p) in opt_list(params, "patterns")?.iter().enumerate() {
            filter.add_pattern(i, p)?;
        }
        for (i, w) in opt_list(params, "blocked_words")?.iter().enumerate() {
            let what = format!("blocked_words[{i}]");
            let obj = w
                .as_object()
                .ok_or_else(|| format!("{what}: expected a mapping, got {w}"))?;
            let keyword = match obj.get("keyword") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(format!("{what}: keyword (a string) is required")),
            };
            let action = Action::parse(obj.get("action").unwrap_or(&Value::Null), &what)?;
            let description = opt_str(obj, "description", &what)?.map(str::to_string);
            filter.add_blocked_word(&keyword, action, description);
        }
        if let Some(path) = opt_str(params, "blocked_words_file", "litellm_params")? {
            filter.load_blocked_words_file(path, files)?;
        }
        Ok(filter)
    }

    /// The guardrail name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the configured `mode` includes the hook (`pre_call` / `post_call`).
    pub fn runs_on(&self, hook: &str) -> bool {
        self.hooks.iter().any(|h| h == hook)
    }

    /// The configured hooks.
    pub fn hooks(&self) -> &[String] {
        &self.hooks
    }

    /// Load-time warnings LiteLLM would log (skipped categories, bad phrase patterns, …).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub(crate) fn stream_scope_allows(&self, hook: &str) -> bool {
        let scope = self
            .scope_by_hook
            .iter()
            .find(|(h, _)| h == hook)
            .map(|(_, s)| s)
            .unwrap_or(&self.scope_default);
        // Offline requests are never streaming.
        *scope != StreamScope::Streaming
    }

    pub(crate) fn add_pattern(&mut self, i: usize, p: &Value) -> Result<(), String> {
        let what = format!("patterns[{i}]");
        let obj = p
            .as_object()
            .ok_or_else(|| format!("{what}: expected a mapping, got {p}"))?;
        let kind = obj.get("pattern_type").and_then(Value::as_str);
        let action = Action::parse(obj.get("action").unwrap_or(&Value::Null), &what)?;
        let pattern_name = opt_str(obj, "pattern_name", &what)?;
        let pattern = opt_str(obj, "pattern", &what)?;
        let custom_name = opt_str(obj, "name", &what)?;
        match kind {
            Some("prebuilt") => {
                let name = pattern_name
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| "pattern_name is required for prebuilt patterns".to_string())?;
                let p = prebuilt(name)?;
                self.patterns.push(PatternRule {
                    name: name.to_string(),
                    action,
                    regex: p.regex,
                    keyword: p.keyword,
                    word_numbers: name == "nl_bsn_contextual",
                });
            }
            Some("regex") => {
                let source = pattern
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| "pattern is required for regex patterns".to_string())?;
                let regex = PyRegex::new(source, true).map_err(|e| e.describe(source))?;
                self.patterns.push(PatternRule {
                    name: custom_name
                        .filter(|n| !n.is_empty())
                        .unwrap_or("custom_regex")
                        .to_string(),
                    action,
                    regex: Arc::new(regex),
                    keyword: None,
                    word_numbers: false,
                });
            }
            _ => {
                return Err(format!(
                    "{what}: pattern_type must be \"prebuilt\" or \"regex\", got {}",
                    obj.get("pattern_type").unwrap_or(&Value::Null)
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn add_blocked_word(
        &mut self,
        keyword: &str,
        action: Action,
        description: Option<String>,
    ) {
        let lower = keyword.to_lowercase();
        self.blocked_words.insert(
            lower.clone(),
            BlockedWord {
                keyword: Keyword::new(lower, false),
                action,
                description,
            },
        );
    }

    pub(crate) fn load_blocked_words_file(
        &mut self,
        path: &str,
        files: &CategoryData,
    ) -> Result<(), String> {
        let base = path.rsplit('/').next().unwrap_or(path);
        let data = match files.get(path).or_else(|| files.get(base)) {
            Some(d) => d,
            None => return Err(format!("Blocked words file not found: {path}")),
        };
        let fail = |reason: &str| format!("Error loading blocked words file {path}: {reason}");
        let list = match data {
            Some(Value::Object(o)) => match o.get("blocked_words") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err(fail("'blocked_words' must be a list")),
                None => {
                    return Err(fail(
                        "Invalid format: file must contain 'blocked_words' key with list of words",
                    ));
                }
            },
            Some(_) => {
                return Err(fail(
                    "Invalid format: file must contain 'blocked_words' key with list of words",
                ));
            }
            None => return Err(fail("the file is not valid YAML")),
        };
        for entry in list {
            let Some(obj) = entry.as_object() else {
                self.warnings
                    .push(format!("Skipping invalid word entry: {entry}"));
                continue;
            };
            if !obj.contains_key("keyword") || !obj.contains_key("action") {
                self.warnings
                    .push(format!("Skipping invalid word entry: {entry}"));
                continue;
            }
            let keyword = obj
                .get("keyword")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("keyword must be a string"))?;
            let action = Action::parse(obj.get("action").unwrap_or(&Value::Null), "entry")
                .map_err(|e| fail(&e))?;
            let description = match obj.get("description") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => return Err(fail(&format!("unsupported description {v}"))),
            };
            self.add_blocked_word(keyword, action, description);
        }
        Ok(())
    }
}

pub(crate) fn parse_mode(mode: Option<&Value>) -> Result<Vec<String>, String> {
    let check = |h: &str| -> Result<String, String> {
        if !ALL_EVENT_HOOKS.contains(&h) {
            return Err(format!("'{h}' is not a valid GuardrailEventHooks"));
        }
        if !HOOKS.contains(&h) {
            return Err(format!(
                "Event hook {h} is not in the supported event hooks of litellm_content_filter"
            ));
        }
        Ok(h.to_string())
    };
    match mode {
        None | Some(Value::Null) => Err("litellm_params.mode is required".into()),
        // `event_hook or GuardrailEventHooks.pre_call`: an empty mode means pre_call.
        Some(Value::String(s)) if s.is_empty() => Ok(vec!["pre_call".into()]),
        Some(Value::String(s)) => Ok(vec![check(s)?]),
        Some(Value::Array(a)) if a.is_empty() => Ok(vec!["pre_call".into()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v.as_str() {
                Some(s) => check(s),
                None => Err(format!("mode entries must be strings, got {v}")),
            })
            .collect(),
        Some(Value::Object(_)) => {
            Err("tag-based modes ({tags, default}) need litellm-enterprise; not supported".into())
        }
        Some(v) => Err(format!("mode must be a string or a list, got {v}")),
    }
}

/// `stream_scope`: a string or a per-hook map; an invalid value is ignored (LiteLLM logs it).
pub(crate) fn parse_stream_scope(v: Option<&Value>) -> (StreamScope, Vec<(String, StreamScope)>) {
    match v {
        Some(Value::String(_)) => match v.and_then(StreamScope::parse) {
            Some(s) => (s, Vec::new()),
            None => (StreamScope::Both, Vec::new()),
        },
        Some(Value::Object(m)) => {
            let mut by_hook = Vec::new();
            for (k, s) in m {
                match StreamScope::parse(s) {
                    Some(s) if ALL_EVENT_HOOKS.contains(&k.as_str()) => {
                        by_hook.push((k.clone(), s));
                    }
                    _ => return (StreamScope::Both, Vec::new()),
                }
            }
            (StreamScope::Both, by_hook)
        }
        _ => (StreamScope::Both, Vec::new()),
    }
}

/// A validated `categories` entry (`ContentFilterCategoryConfig`).
pub(crate) struct CategoryConfig {
    pub(crate) category: String,
    pub(crate) enabled: bool,
    pub(crate) action: Action,
    pub(crate) severity_threshold: String,
    pub(crate) category_file: Option<String>,
}

pub(crate) fn parse_category_config(v: &Value) -> Result<CategoryConfig, String> {
    let what = "categories entry";
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what}: expected a mapping, got {v}"))?;
    let category = match obj.get("category") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(format!("{what}: category (a string) is required")),
    };
    let enabled = match obj.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(format!(
                "{what} {category}: enabled must be a boolean, got {v}"
            ));
        }
    };
    let action = Action::parse(
        obj.get("action").unwrap_or(&Value::Null),
        &format!("{what} {category}"),
    )?;
    let severity_threshold = match obj.get("severity_threshold") {
        None => "medium".to_string(),
        Some(Value::String(s)) if ["high", "medium", "low"].contains(&s.as_str()) => s.clone(),
        Some(v) => {
            return Err(format!(
                "{what} {category}: severity_threshold must be high, medium or low, got {v}"
            ));
        }
    };
    let category_file = opt_str(obj, "category_file", what)?.map(str::to_string);
    Ok(CategoryConfig {
        category,
        enabled,
        action,
        severity_threshold,
        category_file,
    })
}

pub(crate) fn severity_rank(s: &str) -> u8 {
    match s {
        "medium" => 1,
        "high" => 2,
        _ => 0,
    }
}

pub(crate) fn threshold_rank(s: &str) -> u8 {
    match s {
        "low" => 0,
        "high" => 2,
        _ => 1,
    }
}

/// `_should_apply_severity`.
pub(crate) fn meets_threshold(severity: &str, threshold: &str) -> bool {
    severity_rank(severity) >= threshold_rank(threshold)
}

/// `[w.lower() for w in value]` over a YAML value (a string iterates by character).
pub(crate) fn lower_strings(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_lowercase)
                    .ok_or_else(|| format!("{x} is not a string"))
            })
            .collect(),
        Value::String(s) => Ok(s.chars().map(|c| c.to_lowercase().collect()).collect()),
        v => Err(format!("{v} is not a list")),
    }
}

/// `[w.lower() for w in value] if value else []`.
pub(crate) fn lower_strings_if_truthy(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(v) => lower_strings(v),
    }
}

/// Why a category did not load.
pub(crate) enum LoadError {
    /// LiteLLM logs it and skips the category.
    Skip(String),
    /// Outside what this implementation reproduces: the guardrail cannot be built.
    Fatal(String),
}

pub(crate) fn is_category_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
