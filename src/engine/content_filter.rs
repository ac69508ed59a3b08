//! LiteLLM's built-in `litellm_content_filter` guardrail (litellm 1.110.2), run offline.
//!
//! Behaviour reference: `shared/reference/litellm-content-filter.md`. This module reproduces,
//! for one catalog entry, what LiteLLM does when a policy pipeline step (or an independently
//! attached guardrail) runs the content filter on a chat-completions request (`pre_call`) or on
//! its response (`post_call`):
//!
//! * configuration from the entry's `litellm_params` (prebuilt patterns, custom regexes, inline
//!   blocked words, a blocked-words file and category files supplied as data), with LiteLLM's
//!   load-time quirks (`pattern_redaction_format` / `keyword_redaction_tag` ignored from YAML,
//!   duplicate keywords collapse onto the first position with the last values, the `action`
//!   hints of `patterns.json` ignored, an empty `mode` meaning `pre_call`, …);
//! * the per-text algorithm in LiteLLM's order: category exceptions, conditional categories,
//!   phrase patterns, category keywords, regex patterns (masking plan, then the block check on
//!   the text with earlier masks applied), blocked words on the masked text;
//! * text extraction: every message's content (all roles, empty strings included, the
//!   `skip_system_message_in_guardrail` / `skip_tool_message_in_guardrail` /
//!   `scan_only_tool_results` scoping) for `pre_call`; the response text, when non-empty, for
//!   `post_call`; MASK rewrites in place, BLOCK fails with the `str()` of the
//!   `HTTPException` detail dict, exactly what LiteLLM's pipeline executor records;
//! * mode gating (a guardrail whose `mode` does not include the hook passes untouched) and the
//!   stream-scope gate (our requests are non-streaming, so `stream_scope: streaming` skips).
//!
//! Regexes follow Python's `re` exactly. Patterns are parsed with Python's grammar and
//! compiled with Python's semantics for `IGNORECASE` (simple lower-casing plus CPython's
//! extra case equivalences such as `i`/`ı`, `s`/`ſ`), `\d`, `\w`, `\s`, `\b`, `.` and `$`.
//! Most patterns run on the `regex` crate with explicit character classes. Constructs the
//! `regex` crate lacks — look-ahead and look-behind (eight prebuilt patterns use them), a
//! non-`MULTILINE` `$`, patterns that can match the empty string (Python's `finditer`
//! empty-match rules), and `\b` on text containing characters whose word-ness differs between
//! Python and Rust (combining marks, `²`, `½`, connector punctuation) — run on a small
//! backtracking matcher in this module that follows `sre`'s search order, with memoised states
//! so it stays polynomial. Python features with no exact equivalent here (backreferences,
//! atomic groups, possessive quantifiers, conditional groups, `\N{…}`, the `a`/`x`/`L` flags,
//! repeats of a sub-pattern that can match the empty string, repeat bounds above 1000) are
//! rejected at load with a message naming the construct.
//!
//! Character classes come from the `regex-syntax` Unicode tables; they agree with CPython
//! 3.11 (Unicode 14) for every character assigned in Unicode 14 (the differential test checks
//! this exhaustively); characters assigned later may classify differently.
//!
//! Not reproduced (rejected at load): `competitor_intent_config`, tag-map modes (enterprise),
//! `scan_raw_request`, non-string keyword severities and blocked-word descriptions. Requests
//! here carry plain-string contents, so images, list contents and tool calls never occur.
//! Category and blocked-words files are parsed as YAML 1.2 (`serde-saphyr`), where PyYAML
//! reads YAML 1.1: an unquoted `yes`/`no`/`on`/`off` keyword is a string here and a boolean
//! (a load error) in LiteLLM. The global `litellm_settings` (`skip_system_message_in_guardrail`
//! and friends) are taken at their defaults; the per-guardrail flags are honoured.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::catalog::Catalog;
use super::model::PipelineMode;
use super::pipeline::{Guardrail, Request, Rewrite, Verdict};
use super::testing::GuardrailProvider;

/// The `litellm_params.guardrail` value this module implements.
pub const KIND: &str = "litellm_content_filter";

const KEYWORD_TAG: &str = "[KEYWORD_REDACTED]";

// ─────────────────────────────────────────────────────────────────────────────
// Category data (supplied by the caller: the project ships no category lists)
// ─────────────────────────────────────────────────────────────────────────────

/// Category files and blocked-words files, by file name (as in a ConfigMap), already read.
///
/// A file whose name ends in `.json` (any case) is LiteLLM's JSON category format; anything
/// else is YAML. A file that does not parse is kept as unreadable: a category pointing at it is
/// skipped, as LiteLLM skips a category whose file fails to load.
#[derive(Clone, Debug, Default)]
pub struct CategoryData {
    files: BTreeMap<String, Option<Value>>,
}

impl CategoryData {
    pub fn new() -> Self {
        Self::default()
    }

    /// Files from `(name, text)` pairs.
    pub fn from_texts<N: Into<String>, T: AsRef<str>>(
        files: impl IntoIterator<Item = (N, T)>,
    ) -> Self {
        let mut data = Self::new();
        for (name, text) in files {
            data.insert_text(name, text.as_ref());
        }
        data
    }

    /// Add a file from its text.
    pub fn insert_text(&mut self, name: impl Into<String>, text: &str) {
        let name = name.into();
        let parsed = if name.to_lowercase().ends_with(".json") {
            serde_json::from_str::<Value>(text).ok()
        } else {
            serde_saphyr::from_str::<Value>(text).ok()
        };
        self.files.insert(name, parsed);
    }

    /// Add a file already parsed.
    pub fn insert_value(&mut self, name: impl Into<String>, value: Value) {
        self.files.insert(name.into(), Some(value));
    }

    /// The file names held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    fn get(&self, name: &str) -> Option<&Option<Value>> {
        self.files.get(name)
    }
}

/// Bundled LiteLLM category files (names only): a category that names one of these must have
/// its file supplied, because LiteLLM would load its own copy rather than skip it.
const BUNDLED_CATEGORIES: &[&str] = &[
    "age_discrimination.yaml",
    "bias_gender.yaml",
    "bias_racial.yaml",
    "bias_religious.yaml",
    "bias_sexual_orientation.yaml",
    "claims_fraud_coaching.yaml",
    "claims_medical_advice.yaml",
    "claims_phi_disclosure.yaml",
    "claims_prior_auth_gaming.yaml",
    "claims_system_override.yaml",
    "denied_financial_advice.yaml",
    "denied_insults.yaml",
    "denied_legal_advice.yaml",
    "denied_medical_advice.yaml",
    "disability.yaml",
    "gender_sexual_orientation.yaml",
    "harm_toxic_abuse.json",
    "harm_toxic_abuse_au.json",
    "harm_toxic_abuse_de.json",
    "harm_toxic_abuse_es.json",
    "harm_toxic_abuse_fr.json",
    "harmful_child_safety.yaml",
    "harmful_illegal_weapons.yaml",
    "harmful_self_harm.yaml",
    "harmful_violence.yaml",
    "military_status.yaml",
    "prompt_injection_data_exfiltration.yaml",
    "prompt_injection_jailbreak.yaml",
    "prompt_injection_malicious_code.yaml",
    "prompt_injection_sql.yaml",
    "prompt_injection_system_prompt.yaml",
    "religion.yaml",
];

const BUNDLED_TEMPLATES: &[&str] = &[
    "airline_brand_protection.yaml",
    "aviation_safety_topics.yaml",
    "eu_ai_act_art5_biometric_profiling.yaml",
    "eu_ai_act_art5_biometric_profiling_fr.yaml",
    "eu_ai_act_art5_emotion_recognition.yaml",
    "eu_ai_act_art5_emotion_recognition_fr.yaml",
    "eu_ai_act_art5_manipulation.yaml",
    "eu_ai_act_art5_manipulation_fr.yaml",
    "eu_ai_act_art5_social_scoring.yaml",
    "eu_ai_act_art5_social_scoring_fr.yaml",
    "eu_ai_act_art5_vulnerability.yaml",
    "eu_ai_act_art5_vulnerability_fr.yaml",
    "eu_ai_act_article5.yaml",
    "eu_ai_act_article5_fr.yaml",
    "prompt_injection.yaml",
    "sg_mas_data_governance.yaml",
    "sg_mas_fairness_bias.yaml",
    "sg_mas_human_oversight.yaml",
    "sg_mas_model_security.yaml",
    "sg_mas_transparency_explainability.yaml",
    "sg_pdpa_data_transfer.yaml",
    "sg_pdpa_do_not_call.yaml",
    "sg_pdpa_personal_identifiers.yaml",
    "sg_pdpa_profiling_automated_decisions.yaml",
    "sg_pdpa_sensitive_data.yaml",
    "sql_injection.yaml",
    "uae_anti_discrimination.yaml",
    "uae_cultural_sensitivity.yaml",
];

/// Where a category's file comes from.
enum FileLookup<'a> {
    Found(&'a str, &'a Option<Value>),
    /// LiteLLM would load its bundled copy; the caller did not supply it.
    BundledMissing(String),
    /// LiteLLM would not find it either (the category is skipped with a warning).
    Absent,
}

impl CategoryData {
    /// `find_category_file`: `<name>.yaml`, then `<name>.json`, in the categories folder.
    fn find_category(&self, name: &str) -> FileLookup<'_> {
        for ext in [".yaml", ".json"] {
            let file = format!("{name}{ext}");
            if let Some((k, v)) = self.files.get_key_value(&file) {
                return FileLookup::Found(k, v);
            }
        }
        for ext in [".yaml", ".json"] {
            let file = format!("{name}{ext}");
            if BUNDLED_CATEGORIES.contains(&file.as_str()) {
                return FileLookup::BundledMissing(file);
            }
        }
        FileLookup::Absent
    }

    /// `category_file`: the path as given, then ever shorter `/`-suffixes (LiteLLM resolves
    /// them under its data folders: `categories/…` and `policy_templates/…`).
    fn find_category_file(&self, path: &str) -> FileLookup<'_> {
        let parts: Vec<&str> = path.split('/').collect();
        let suffixes: Vec<String> = (0..parts.len()).map(|i| parts[i..].join("/")).collect();
        for s in &suffixes {
            if let Some((k, v)) = self.files.get_key_value(s.as_str()) {
                return FileLookup::Found(k, v);
            }
            for dir in ["categories/", "policy_templates/"] {
                if let Some(base) = s.strip_prefix(dir)
                    && !base.contains('/')
                    && let Some((k, v)) = self.files.get_key_value(base)
                {
                    return FileLookup::Found(k, v);
                }
            }
        }
        for s in &suffixes {
            if let Some(base) = s.strip_prefix("categories/")
                && BUNDLED_CATEGORIES.contains(&base)
            {
                return FileLookup::BundledMissing(base.to_string());
            }
            if let Some(base) = s.strip_prefix("policy_templates/")
                && BUNDLED_TEMPLATES.contains(&base)
            {
                return FileLookup::BundledMissing(base.to_string());
            }
        }
        FileLookup::Absent
    }
}

// ─────────────────────────────────────────────────────────────────────────────
// Configuration
// ─────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Block,
    Mask,
}

impl Action {
    fn parse(v: &Value, what: &str) -> Result<Action, String> {
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
const HOOKS: &[&str] = &[
    "pre_call",
    "post_call",
    "during_call",
    "logging_only",
    "pre_mcp_call",
    "post_mcp_call",
    "realtime_input_transcription",
];

const ALL_EVENT_HOOKS: &[&str] = &[
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
enum StreamScope {
    Both,
    Streaming,
    NonStreaming,
}

impl StreamScope {
    fn parse(v: &Value) -> Option<StreamScope> {
        match v.as_str()? {
            "both" => Some(StreamScope::Both),
            "streaming" => Some(StreamScope::Streaming),
            "non_streaming" => Some(StreamScope::NonStreaming),
            _ => None,
        }
    }
}

fn opt_bool(params: &serde_json::Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("{key} must be true, false or null, got {v}")),
    }
}

fn opt_str<'a>(
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

fn opt_list<'a>(
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
struct PyDict<V> {
    entries: Vec<(String, V)>,
    index: HashMap<String, usize>,
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
    fn insert(&mut self, key: String, value: V) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
    fn get(&self, key: &str) -> Option<&V> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }
    fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
    fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One regex pattern rule (prebuilt or custom).
#[derive(Debug)]
struct PatternRule {
    name: String,
    action: Action,
    regex: Arc<PyRegex>,
    keyword: Option<Arc<PyRegex>>,
    word_numbers: bool,
}

/// How a keyword is searched for in lower-cased text.
#[derive(Debug)]
enum KeywordMatcher {
    /// A plain substring.
    Substring(String),
    /// `\b` + literal + `\b` (Python word boundaries).
    Word(String),
    /// Anything else (a keyword with `*`).
    Regex(PyRegex),
}

impl KeywordMatcher {
    /// `re.escape(keyword)` with each escaped `*` turned into `.?`, optionally in `\b…\b`.
    fn new(keyword: &str, word_bounded: bool) -> Result<Self, ReError> {
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

    fn is_match(&self, text_lower: &str) -> bool {
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
struct Keyword {
    keyword: String,
    word_bounded: bool,
    detect: OnceLock<Result<KeywordMatcher, ReError>>,
    mask: OnceLock<Result<PyRegex, ReError>>,
}

impl Keyword {
    fn new(keyword: String, word_bounded: bool) -> Self {
        Keyword {
            keyword,
            word_bounded,
            detect: OnceLock::new(),
            mask: OnceLock::new(),
        }
    }

    fn found_in(&self, text_lower: &str) -> Result<bool, String> {
        match self
            .detect
            .get_or_init(|| KeywordMatcher::new(&self.keyword, self.word_bounded))
        {
            Ok(m) => Ok(m.is_match(text_lower)),
            Err(e) => Err(e.describe(&self.keyword)),
        }
    }

    /// `re.sub(keyword_regex, tag, text, flags=re.IGNORECASE)`.
    fn mask(&self, text: &str) -> Result<String, String> {
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
struct BlockedWord {
    keyword: Keyword,
    action: Action,
    description: Option<String>,
}

#[derive(Debug)]
struct CategoryKeyword {
    keyword: Keyword,
    category: String,
    severity: String,
    action: Action,
}

/// A category file as loaded (`CategoryConfig`).
#[derive(Debug)]
struct LoadedCategory {
    default_action: Action,
    exceptions: Vec<String>,
    identifier_words: Vec<String>,
    always_block_keywords: Vec<Value>,
    /// `None` when the file says `keywords: null` (LiteLLM's loop then fails).
    keywords: Option<Vec<Value>>,
    inherit_from: Option<String>,
    additional_block_words: Vec<String>,
    phrase_patterns: Vec<(String, Arc<PyRegex>)>,
}

#[derive(Debug)]
struct Conditional {
    identifier_words: Vec<String>,
    block_words: Vec<String>,
    action: Action,
}

/// A `litellm_content_filter` guardrail built from a catalog entry.
#[derive(Debug)]
pub struct ContentFilter {
    name: String,
    hooks: Vec<String>,
    scope_default: StreamScope,
    scope_by_hook: Vec<(String, StreamScope)>,
    skip_system: bool,
    skip_tool: bool,
    only_tool_results: bool,
    patterns: Vec<PatternRule>,
    blocked_words: PyDict<BlockedWord>,
    categories: PyDict<LoadedCategory>,
    conditionals: PyDict<Conditional>,
    always_block: PyDict<CategoryKeyword>,
    category_keywords: PyDict<CategoryKeyword>,
    warnings: Vec<String>,
}

/// A BLOCK: LiteLLM's `HTTPException(400, detail={...})`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    fields: Vec<(&'static str, Option<String>)>,
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

    fn stream_scope_allows(&self, hook: &str) -> bool {
        let scope = self
            .scope_by_hook
            .iter()
            .find(|(h, _)| h == hook)
            .map(|(_, s)| s)
            .unwrap_or(&self.scope_default);
        // Offline requests are never streaming.
        *scope != StreamScope::Streaming
    }

    fn add_pattern(&mut self, i: usize, p: &Value) -> Result<(), String> {
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

    fn add_blocked_word(&mut self, keyword: &str, action: Action, description: Option<String>) {
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

    fn load_blocked_words_file(&mut self, path: &str, files: &CategoryData) -> Result<(), String> {
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

fn parse_mode(mode: Option<&Value>) -> Result<Vec<String>, String> {
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
fn parse_stream_scope(v: Option<&Value>) -> (StreamScope, Vec<(String, StreamScope)>) {
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
struct CategoryConfig {
    category: String,
    enabled: bool,
    action: Action,
    severity_threshold: String,
    category_file: Option<String>,
}

fn parse_category_config(v: &Value) -> Result<CategoryConfig, String> {
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

fn severity_rank(s: &str) -> u8 {
    match s {
        "medium" => 1,
        "high" => 2,
        _ => 0,
    }
}

fn threshold_rank(s: &str) -> u8 {
    match s {
        "low" => 0,
        "high" => 2,
        _ => 1,
    }
}

/// `_should_apply_severity`.
fn meets_threshold(severity: &str, threshold: &str) -> bool {
    severity_rank(severity) >= threshold_rank(threshold)
}

/// `[w.lower() for w in value]` over a YAML value (a string iterates by character).
fn lower_strings(v: &Value) -> Result<Vec<String>, String> {
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
fn lower_strings_if_truthy(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(v) => lower_strings(v),
    }
}

/// Why a category did not load.
enum LoadError {
    /// LiteLLM logs it and skips the category.
    Skip(String),
    /// Outside what this implementation reproduces: the guardrail cannot be built.
    Fatal(String),
}

fn is_category_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ContentFilter {
    /// `_load_categories` for one entry.
    fn load_category(&mut self, cfg: &CategoryConfig, files: &CategoryData) -> Result<(), String> {
        let name = cfg.category.as_str();
        if !is_category_name(name) {
            self.warnings.push(format!(
                "Category name '{name}' contains invalid characters, skipping"
            ));
            return Ok(());
        }
        if !cfg.enabled {
            return Ok(());
        }
        let lookup = match &cfg.category_file {
            Some(path) => files.find_category_file(path),
            None => files.find_category(name),
        };
        let (file_name, data) = match lookup {
            FileLookup::Found(k, v) => (k, v),
            FileLookup::BundledMissing(file) => return Err(bundled_missing(name, &file)),
            FileLookup::Absent => {
                self.warnings
                    .push(format!("Category file not found for {name}, skipping"));
                return Ok(());
            }
        };
        let loaded = match load_category_file(file_name, data.as_ref()) {
            Ok(c) => c,
            Err(LoadError::Fatal(e)) => return Err(format!("category {name}: {e}")),
            Err(LoadError::Skip(e)) => {
                self.warnings
                    .push(format!("Error loading category {name}: {e}"));
                return Ok(());
            }
        };
        let action = cfg.action;
        let threshold = cfg.severity_threshold.as_str();
        let conditional = !loaded.identifier_words.is_empty()
            && (loaded.inherit_from.is_some() || !loaded.additional_block_words.is_empty());
        let identifier_words = loaded.identifier_words.clone();
        let inherit_from = loaded.inherit_from.clone();
        let additional = loaded.additional_block_words.clone();
        let always = loaded.always_block_keywords.clone();
        let keywords = loaded.keywords.clone();
        self.categories.insert(name.to_string(), loaded);

        if conditional {
            match self.conditional_block_words(name, inherit_from.as_deref(), threshold, files)? {
                Some(mut block_words) => {
                    block_words.extend(additional);
                    self.conditionals.insert(
                        name.to_string(),
                        Conditional {
                            identifier_words,
                            block_words,
                            action,
                        },
                    );
                }
                None => self
                    .warnings
                    .push(format!("Error loading conditional category for {name}")),
            }
        }

        // always_block_keywords, then keywords; a malformed entry stops the category there
        // (LiteLLM's loop raises and its handler logs the error; what was added stays).
        for kw in &always {
            let Some(keyword) = kw.get("keyword").and_then(Value::as_str) else {
                self.warnings
                    .push(format!("Error loading category {name}: bad keyword entry"));
                return Ok(());
            };
            let severity = match kw.get("severity") {
                None => "high",
                Some(Value::String(s)) => s.as_str(),
                Some(v) => return Err(non_string_severity(name, v)),
            };
            if meets_threshold(severity, threshold) {
                self.always_block.insert(
                    keyword.to_lowercase(),
                    CategoryKeyword::new(keyword, name, severity, action),
                );
            }
        }
        let Some(keywords) = keywords else {
            self.warnings
                .push(format!("Error loading category {name}: keywords is null"));
            return Ok(());
        };
        for kw in &keywords {
            let (Some(keyword), Some(severity)) = (
                kw.get("keyword").and_then(Value::as_str),
                kw.get("severity"),
            ) else {
                self.warnings
                    .push(format!("Error loading category {name}: bad keyword entry"));
                return Ok(());
            };
            let Some(severity) = severity.as_str() else {
                return Err(non_string_severity(name, severity));
            };
            if meets_threshold(severity, threshold) {
                self.category_keywords.insert(
                    keyword.to_lowercase(),
                    CategoryKeyword::new(keyword, name, severity, action),
                );
            }
        }
        Ok(())
    }

    /// `_load_conditional_category`: the inherited block words (threshold applied), or `None`
    /// when LiteLLM's loader fails and the conditional category is not registered.
    fn conditional_block_words(
        &mut self,
        name: &str,
        inherit_from: Option<&str>,
        threshold: &str,
        files: &CategoryData,
    ) -> Result<Option<Vec<String>>, String> {
        let mut block_words = Vec::new();
        let Some(inherit) = inherit_from else {
            return Ok(Some(block_words));
        };
        let base = inherit.replace(".json", "").replace(".yaml", "");
        let (file, data) = match files.find_category(&base) {
            FileLookup::Found(k, v) => (k, v),
            FileLookup::BundledMissing(file) => return Err(bundled_missing(name, &file)),
            FileLookup::Absent => {
                self.warnings.push(format!(
                    "Category {name}: inherit_from '{inherit}' file not found"
                ));
                return Ok(Some(block_words));
            }
        };
        let inherited = match load_category_file(file, data.as_ref()) {
            Ok(c) => c,
            Err(LoadError::Fatal(e)) => return Err(format!("category {name}: {e}")),
            Err(LoadError::Skip(_)) => return Ok(None),
        };
        let Some(keywords) = inherited.keywords else {
            return Ok(None);
        };
        for kw in &keywords {
            let (Some(keyword), Some(severity)) = (
                kw.get("keyword").and_then(Value::as_str),
                kw.get("severity"),
            ) else {
                return Ok(None);
            };
            let Some(severity) = severity.as_str() else {
                return Err(non_string_severity(name, severity));
            };
            if meets_threshold(severity, threshold) {
                block_words.push(keyword.to_lowercase());
            }
        }
        Ok(Some(block_words))
    }
}

fn bundled_missing(name: &str, file: &str) -> String {
    format!(
        "category '{name}' uses LiteLLM's bundled category file {file}; add that file (from the litellm package) to the guardrail catalog's category data"
    )
}

fn non_string_severity(name: &str, v: &Value) -> String {
    format!("category {name}: non-string keyword severity {v} is not supported")
}

impl CategoryKeyword {
    fn new(keyword: &str, category: &str, severity: &str, action: Action) -> Self {
        let lower = keyword.to_lowercase();
        let word_bounded = !lower.contains(' ');
        CategoryKeyword {
            keyword: Keyword::new(lower, word_bounded),
            category: category.to_string(),
            severity: severity.to_string(),
            action,
        }
    }
}

/// `_load_category_file`: a YAML mapping, or the JSON entry-list format.
fn load_category_file(file_name: &str, data: Option<&Value>) -> Result<LoadedCategory, LoadError> {
    let skip = |m: &str| LoadError::Skip(m.to_string());
    let data = data.ok_or_else(|| skip("the file does not parse"))?;
    if file_name.to_lowercase().ends_with(".json") {
        return load_json_category(data);
    }
    let obj = data
        .as_object()
        .ok_or_else(|| skip("the file is not a mapping"))?;
    let default_action = match obj.get("default_action") {
        None => Action::Block,
        Some(v) => Action::parse(v, "default_action").map_err(|e| skip(&e))?,
    };
    let keywords = match obj.get("keywords") {
        None => Some(Vec::new()),
        Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(v) => return Err(skip(&format!("keywords must be a list, got {v}"))),
    };
    let always_block_keywords = match obj.get("always_block_keywords") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(v) => {
            return Err(skip(&format!(
                "always_block_keywords must be a list, got {v}"
            )));
        }
    };
    let exceptions = match obj.get("exceptions") {
        None => Vec::new(),
        Some(v) => lower_strings(v).map_err(|e| skip(&format!("exceptions: {e}")))?,
    };
    let identifier_words = lower_strings_if_truthy(obj.get("identifier_words"))
        .map_err(|e| skip(&format!("identifier_words: {e}")))?;
    let additional_block_words = lower_strings_if_truthy(obj.get("additional_block_words"))
        .map_err(|e| skip(&format!("additional_block_words: {e}")))?;
    let inherit_from = match obj.get("inherit_from") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(LoadError::Fatal(format!(
                "inherit_from must be a string, got {v}"
            )));
        }
    };
    let mut phrase_patterns = Vec::new();
    match obj.get("phrase_patterns") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for p in a {
                let Some(src) = p.as_str() else {
                    return Err(skip(&format!("phrase pattern {p} is not a string")));
                };
                match PyRegex::new(src, true) {
                    Ok(r) => phrase_patterns.push((src.to_string(), Arc::new(r))),
                    // Invalid in Python too: LiteLLM skips it with a warning.
                    Err(ReError::Invalid(_)) => {}
                    Err(e @ ReError::Unsupported(_)) => {
                        return Err(LoadError::Fatal(format!(
                            "phrase pattern: {}",
                            e.describe(src)
                        )));
                    }
                }
            }
        }
        Some(v) => return Err(skip(&format!("phrase_patterns must be a list, got {v}"))),
    }
    Ok(LoadedCategory {
        default_action,
        exceptions,
        identifier_words,
        always_block_keywords,
        keywords,
        inherit_from,
        additional_block_words,
        phrase_patterns,
    })
}

/// `_load_category_file_json`: `{id, match, tags, severity}` entries; each `|`-separated phrase
/// of `match` becomes a keyword.
fn load_json_category(data: &Value) -> Result<LoadedCategory, LoadError> {
    let single = [data.clone()];
    let entries: &[Value] = match data {
        Value::Array(a) => a,
        _ => &single,
    };
    let mut keywords = Vec::new();
    let mut seen = HashSet::new();
    for item in entries {
        let Some(obj) = item.as_object() else {
            continue;
        };
        // `item.get("match") or ""`, then `.split("|")`.
        let match_str = match obj.get("match") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Number(n)) if n.as_f64() == Some(0.0) => "",
            Some(Value::Array(a)) if a.is_empty() => "",
            Some(Value::Object(o)) if o.is_empty() => "",
            Some(v) => {
                return Err(LoadError::Skip(format!("match must be a string, got {v}")));
            }
        };
        // `severity_map.get(raw if isinstance(raw, int) else 2, "medium")` (a bool is an int).
        let raw = match obj.get("severity") {
            None => Some(2),
            Some(Value::Bool(b)) => Some(i64::from(*b)),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64(),
            Some(_) => Some(2),
        };
        let severity = match raw {
            Some(4) | Some(3) => "high",
            Some(1) => "low",
            _ => "medium",
        };
        for phrase in match_str.split('|') {
            let phrase = py_strip(phrase).to_lowercase();
            if phrase.is_empty() || !seen.insert(phrase.clone()) {
                continue;
            }
            keywords.push(serde_json::json!({"keyword": phrase, "severity": severity}));
        }
    }
    Ok(LoadedCategory {
        default_action: Action::Block,
        exceptions: Vec::new(),
        identifier_words: Vec::new(),
        always_block_keywords: Vec::new(),
        keywords: Some(keywords),
        inherit_from: None,
        additional_block_words: Vec::new(),
        phrase_patterns: Vec::new(),
    })
}

// ─────────────────────────────────────────────────────────────────────────────
// The per-text algorithm (`_filter_single_text`)
// ─────────────────────────────────────────────────────────────────────────────

/// A masked span (`_RedactionSpan`); `index` is the pattern's position in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    index: usize,
}

/// The text with some spans replaced by tags (`_RedactedText`), with position mapping back.
struct Redacted<'a> {
    spans: &'a [Span],
    tags: Vec<String>,
    tag_starts: Vec<usize>,
}

impl Redacted<'_> {
    fn render(&self, text: &str) -> String {
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

    fn original_start(&self, position: usize) -> usize {
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

    fn original_end(&self, position: usize) -> usize {
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
fn merge_redaction_spans(mut spans: Vec<Span>) -> Vec<Span> {
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
fn merge_spans(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
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
fn gap_allowed(gap: &str) -> bool {
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
fn near_keyword(start: usize, end: usize, keywords: &[(usize, usize)], text: &str) -> bool {
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

const WORD_NUMBERS: [(&str, char); 11] = [
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

struct WordNumberRegexes {
    sequence: PyRegex,
    token: PyRegex,
}

fn word_number_regexes() -> Option<&'static WordNumberRegexes> {
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
fn word_number_digits(token_re: &PyRegex, sequence: &str) -> Option<String> {
    let mut digits = String::new();
    for (s, e) in token_re.find_iter(sequence) {
        let token = sequence[s..e].to_lowercase();
        let (_, d) = WORD_NUMBERS.iter().find(|(w, _)| *w == token)?;
        digits.push(*d);
    }
    (!digits.is_empty()).then_some(digits)
}

/// `re.split(r"[.!?]+", text)`.
fn split_sentences(text: &str) -> Vec<&str> {
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

fn pattern_blocked(name: &str) -> Blocked {
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

fn conditional_blocked(category: &str, phrase: &str) -> Blocked {
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
    fn check_conditionals(&self, text: &str) -> Option<(String, &str, Action)> {
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
    fn check_phrase_patterns(&self, text: &str) -> Option<(String, &str, Action)> {
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
    fn check_category_keywords(
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

    fn redacted<'a>(&self, spans: &'a [Span]) -> Redacted<'a> {
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
    fn find_pattern_spans(&self, text: &str, rule: &PatternRule) -> Vec<(usize, usize)> {
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
    fn mask_step(&self, text: &str, spans: &[Span], index: usize) -> Vec<Span> {
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
    fn apply_patterns(&self, text: &str) -> Result<String, FilterError> {
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

// ─────────────────────────────────────────────────────────────────────────────
// Requests: extraction, gating, verdicts
// ─────────────────────────────────────────────────────────────────────────────

impl ContentFilter {
    /// `role_out_of_guardrail_scope`.
    fn role_out_of_scope(&self, role: &str) -> bool {
        let role = role.to_lowercase();
        if self.skip_system && role == "system" {
            return true;
        }
        if self.skip_tool && role == "tool" {
            return true;
        }
        self.only_tool_results && role != "tool" && role != "function"
    }

    /// What LiteLLM's pipeline executor makes of this guardrail as a step in a `mode` pipeline
    /// (and what an independently attached guardrail does on that hook).
    pub fn run(&self, mode: PipelineMode, request: &Request) -> Verdict {
        let hook = mode.as_str();
        if !self.stream_scope_allows(hook) {
            return Verdict::Skip;
        }
        if !self.runs_on(hook) {
            return Verdict::Pass(Rewrite::None);
        }
        let verdict_for = |e: FilterError| match e {
            FilterError::Blocked(b) => Verdict::Fail(b.python_str()),
            FilterError::Internal(m) => Verdict::Error(m),
        };
        match mode {
            PipelineMode::PreCall => {
                let mut out = request.clone();
                let mut changed = false;
                for (i, m) in request.messages.iter().enumerate() {
                    if self.role_out_of_scope(&m.role) {
                        continue;
                    }
                    match self.filter_text(&m.content) {
                        Ok(t) if t != m.content => {
                            out.messages[i].content = t;
                            changed = true;
                        }
                        Ok(_) => {}
                        Err(e) => return verdict_for(e),
                    }
                }
                if changed {
                    Verdict::Pass(Rewrite::InPlace(out))
                } else {
                    Verdict::Pass(Rewrite::None)
                }
            }
            PipelineMode::PostCall => {
                let Some(text) = request.response.as_deref().filter(|t| !t.is_empty()) else {
                    return Verdict::Pass(Rewrite::None);
                };
                match self.filter_text(text) {
                    Ok(t) if t != text => Verdict::Pass(Rewrite::InPlace(Request {
                        response: Some(t),
                        ..request.clone()
                    })),
                    Ok(_) => Verdict::Pass(Rewrite::None),
                    Err(e) => verdict_for(e),
                }
            }
        }
    }
}

impl Guardrail for ContentFilter {
    fn check(&self, mode: PipelineMode, request: &Request) -> Verdict {
        self.run(mode, request)
    }
}

/// A content-filter catalog entry that could not be built: every run errors with the reason.
#[derive(Debug)]
struct Unbuildable {
    name: String,
    error: String,
}

impl Guardrail for Unbuildable {
    fn check(&self, _: PipelineMode, _: &Request) -> Verdict {
        Verdict::Error(format!(
            "guardrail '{}' ({KIND}) cannot run: {}",
            self.name, self.error
        ))
    }
}

#[derive(Debug)]
enum Built {
    Filter(Box<ContentFilter>),
    Unbuildable(Unbuildable),
}

/// The guardrail catalog's content filters, built once per catalog: they run for real in
/// tests; every other guardrail needs a mock.
#[derive(Debug, Default)]
pub struct CatalogGuardrails {
    built: HashMap<String, Built>,
    modes: HashMap<String, PipelineMode>,
}

impl CatalogGuardrails {
    /// Build every `litellm_content_filter` entry (the first entry of a name wins, as LiteLLM's
    /// callback lookup finds the first).
    pub fn new(catalog: &Catalog, data: &CategoryData) -> Self {
        let mut out = CatalogGuardrails::default();
        for entry in &catalog.entries {
            if out.modes.contains_key(&entry.name) {
                continue;
            }
            let mut mode = entry.mode.unwrap_or(PipelineMode::PreCall);
            if entry.kind.as_deref() == Some(KIND) {
                let params = entry.raw.get("litellm_params").unwrap_or(&Value::Null);
                let built = match ContentFilter::from_params(&entry.name, params, data) {
                    Ok(f) => {
                        mode = if f.runs_on("pre_call") {
                            PipelineMode::PreCall
                        } else if f.runs_on("post_call") {
                            PipelineMode::PostCall
                        } else {
                            mode
                        };
                        Built::Filter(Box::new(f))
                    }
                    Err(error) => Built::Unbuildable(Unbuildable {
                        name: entry.name.clone(),
                        error,
                    }),
                };
                out.built.insert(entry.name.clone(), built);
            }
            out.modes.insert(entry.name.clone(), mode);
        }
        out
    }

    /// A built content filter.
    pub fn filter(&self, name: &str) -> Option<&ContentFilter> {
        match self.built.get(name)? {
            Built::Filter(f) => Some(f),
            Built::Unbuildable(_) => None,
        }
    }

    /// Content-filter entries that could not be built, with the reason, sorted by name.
    pub fn errors(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .built
            .values()
            .filter_map(|b| match b {
                Built::Unbuildable(u) => Some((u.name.as_str(), u.error.as_str())),
                Built::Filter(_) => None,
            })
            .collect();
        out.sort();
        out
    }
}

impl GuardrailProvider for CatalogGuardrails {
    fn real(&self, name: &str) -> Option<&dyn Guardrail> {
        match self.built.get(name)? {
            Built::Filter(f) => Some(f.as_ref()),
            Built::Unbuildable(u) => Some(u),
        }
    }

    /// The configured mode; for a content filter configured for several hooks, `pre_call` if
    /// it is one of them, else `post_call`.
    fn mode(&self, name: &str) -> PipelineMode {
        self.modes
            .get(name)
            .copied()
            .unwrap_or(PipelineMode::PreCall)
    }
}

// ─────────────────────────────────────────────────────────────────────────────
// Python string semantics
// ─────────────────────────────────────────────────────────────────────────────

/// `str.strip()` (Python whitespace).
fn py_strip(s: &str) -> &str {
    s.trim_matches(pychar::is_space)
}

/// `re.escape` (Python 3.7+).
fn py_re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `repr(str)`.
fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        let u = c as u32;
        match c {
            _ if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if u < 0x20 || u == 0x7f => out.push_str(&format!("\\x{u:02x}")),
            _ if u < 0x7f => out.push(c),
            _ if pychar::is_printable(c) => out.push(c),
            _ if u <= 0xff => out.push_str(&format!("\\x{u:02x}")),
            _ if u <= 0xffff => out.push_str(&format!("\\u{u:04x}")),
            _ => out.push_str(&format!("\\U{u:08x}")),
        }
    }
    out.push(quote);
    out
}

/// `re.search(r"\b" + re.escape(word) + r"\b", text)` without building a regex.
fn contains_word_bounded(text: &str, word: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let mut from = 0;
    while from <= text.len() {
        let Some(i) = text[from..].find(word) else {
            return false;
        };
        let s = from + i;
        let e = s + word.len();
        if at_boundary(text, s) && at_boundary(text, e) {
            return true;
        }
        from = s + text[s..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Python's `\b` at a byte position (Unicode word characters; never on an empty string).
fn at_boundary(text: &str, pos: usize) -> bool {
    if text.is_empty() {
        return false;
    }
    let before = text[..pos].chars().next_back().is_some_and(pychar::is_word);
    let after = text[pos..].chars().next().is_some_and(pychar::is_word);
    before != after
}

// ─────────────────────────────────────────────────────────────────────────────
// Character sets and CPython's character tables
// ─────────────────────────────────────────────────────────────────────────────

const MAX_CP: u32 = 0x10FFFF;

/// A set of code points as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CharSet {
    ranges: Vec<(u32, u32)>,
}

impl CharSet {
    fn from_ranges(mut r: Vec<(u32, u32)>) -> Self {
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

    fn from_points(points: impl IntoIterator<Item = u32>) -> Self {
        Self::from_ranges(points.into_iter().map(|c| (c, c)).collect())
    }

    fn single(c: u32) -> Self {
        CharSet {
            ranges: vec![(c, c)],
        }
    }

    fn all() -> Self {
        CharSet {
            ranges: vec![(0, MAX_CP)],
        }
    }

    fn contains(&self, c: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < c);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= c)
    }

    fn union(&self, other: &CharSet) -> CharSet {
        let mut r = self.ranges.clone();
        r.extend_from_slice(&other.ranges);
        Self::from_ranges(r)
    }

    fn complement(&self) -> CharSet {
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

    fn intersect(&self, other: &CharSet) -> CharSet {
        self.complement().union(&other.complement()).complement()
    }

    fn minus(&self, other: &CharSet) -> CharSet {
        self.intersect(&other.complement())
    }
}

/// CPython's `_casefix._EXTRA_CASES`: lower-case characters that `IGNORECASE` treats as equal
/// although simple case mapping does not relate them.
const EXTRA_CASES: &[(u32, &[u32])] = &[
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

fn extra_cases(c: u32) -> &'static [u32] {
    EXTRA_CASES
        .binary_search_by_key(&c, |&(k, _)| k)
        .map(|i| EXTRA_CASES[i].1)
        .unwrap_or(&[])
}

/// Characters with `str.isdigit()` but not `str.isdecimal()` (Numeric_Type=Digit).
const DIGIT_NOT_DECIMAL: &[(u32, u32)] = &[
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
const PY_SPACE: &[(u32, u32)] = &[
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

struct Tables {
    /// `\w`: `str.isalnum()` or `_`.
    word: CharSet,
    /// `\d`: `str.isdecimal()`.
    decimal: CharSet,
    space: CharSet,
    /// `str.isdigit()`.
    digit: CharSet,
    /// Not `str.isprintable()` (except the space, which is printable).
    unprintable: CharSet,
    /// Characters whose word-ness differs between Python and the `regex` crate.
    word_mismatch: CharSet,
    /// Characters whose simple lower case differs from themselves.
    lower_changed: CharSet,
    /// `lower(c) -> [c]` for every `c` with `lower(c) != c`.
    lower_pre: HashMap<u32, Vec<u32>>,
    /// `(c, upper(c))` for every `c` with `upper(c) != c`.
    upper_changed: Vec<(u32, u32)>,
}

fn unicode_class(pattern: &str) -> CharSet {
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

fn tables() -> &'static Tables {
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
fn simple_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// `_PyUnicode_ToUppercase`: the first character of the full upper-case mapping.
fn simple_upper(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

fn lower_cp(c: u32) -> u32 {
    char::from_u32(c).map_or(c, |ch| simple_lower(ch) as u32)
}

fn upper_cp(c: u32) -> u32 {
    char::from_u32(c).map_or(c, |ch| simple_upper(ch) as u32)
}

fn is_cased_cp(c: u32) -> bool {
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
fn lowering_into(set: &CharSet) -> CharSet {
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
    fn describe(&self, pattern: &str) -> String {
        match self {
            ReError::Invalid(m) => format!("invalid regex {pattern:?}: {m}"),
            ReError::Unsupported(m) => format!(
                "regex {pattern:?} uses {m}, which the offline content filter does not reproduce"
            ),
        }
    }
}

fn invalid<T>(msg: impl Into<String>, pos: usize) -> Result<T, ReError> {
    Err(ReError::Invalid(format!(
        "{} at position {pos}",
        msg.into()
    )))
}

fn unsupported<T>(what: &str) -> Result<T, ReError> {
    Err(ReError::Unsupported(what.to_string()))
}

const FLAG_I: u8 = 1;
const FLAG_M: u8 = 2;
const FLAG_S: u8 = 4;
const FLAG_X: u8 = 8;
const FLAG_A: u8 = 16;
const FLAG_U: u8 = 32;
const FLAG_L: u8 = 64;
const FLAG_T: u8 = 128;
const TYPE_FLAGS: u8 = FLAG_A | FLAG_L | FLAG_U;

fn flag_bit(c: char) -> Option<u8> {
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
const MAX_REPEAT_BOUND: u64 = 1000;
const PY_MAXREPEAT: u64 = 4_294_967_295;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Ch(char),
    Esc(char),
}

impl Tok {
    fn len(self) -> usize {
        match self {
            Tok::Ch(_) => 1,
            Tok::Esc(_) => 2,
        }
    }
}

struct Tokenizer {
    chars: Vec<char>,
    index: usize,
    next: Option<Tok>,
}

impl Tokenizer {
    fn new(s: &str) -> Result<Self, ReError> {
        let mut t = Tokenizer {
            chars: s.chars().collect(),
            index: 0,
            next: None,
        };
        t.advance()?;
        Ok(t)
    }

    fn advance(&mut self) -> Result<(), ReError> {
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

    fn get(&mut self) -> Result<Option<Tok>, ReError> {
        let t = self.next;
        self.advance()?;
        Ok(t)
    }

    fn eat(&mut self, c: char) -> Result<bool, ReError> {
        if self.next == Some(Tok::Ch(c)) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn tell(&self) -> usize {
        self.index - self.next.map_or(0, Tok::len)
    }

    fn seek(&mut self, index: usize) -> Result<(), ReError> {
        self.index = index;
        self.advance()
    }

    fn getwhile(&mut self, n: usize, pred: impl Fn(char) -> bool) -> Result<String, ReError> {
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

    fn getuntil(&mut self, term: char, name: &str) -> Result<String, ReError> {
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
enum Cat {
    Digit,
    NotDigit,
    Space,
    NotSpace,
    Word,
    NotWord,
}

impl Cat {
    fn set(self) -> CharSet {
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

    fn from_escape(c: char) -> Option<Cat> {
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
enum SetItem {
    Lit(u32),
    Range(u32, u32),
    Cat(Cat),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Beginning,
    BeginningString,
    Boundary,
    NonBoundary,
    End,
    EndString,
}

/// `re._parser` opcodes (only what is parsed here).
#[derive(Clone, Debug, PartialEq)]
enum Item {
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

struct ParseState {
    flags: u8,
    groups: usize,
    open: Vec<usize>,
    names: HashMap<String, usize>,
}

fn simple_escape(c: char) -> Option<u32> {
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

fn hex_escape(src: &mut Tokenizer, c: char, at: usize) -> Result<Option<u32>, ReError> {
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
fn class_escape(src: &mut Tokenizer, c: char, at: usize) -> Result<SetItem, ReError> {
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
fn escape(src: &mut Tokenizer, st: &ParseState, c: char, at: usize) -> Result<Item, ReError> {
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

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn parse_pattern(pattern: &str, flags: u8) -> Result<(Vec<Item>, u8), ReError> {
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
const MAX_GROUP_NESTING: usize = 100;

/// `_parse_sub`: an alternation.
fn parse_sub(
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
fn parse_seq(
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

fn parse_class(src: &mut Tokenizer, here: usize) -> Result<Item, ReError> {
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
fn parse_group(
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
fn parse_flags(
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
fn width(items: &[Item]) -> (u64, u64) {
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

// ─────────────────────────────────────────────────────────────────────────────
// Python `re`: compilation (flags resolved, character classes made explicit)
// ─────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Assertion {
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
enum Node {
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
fn literal_set(c: u32, flags: u8) -> CharSet {
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
fn class_set(items: &[SetItem], negate: bool, flags: u8) -> CharSet {
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

fn compile_items(items: &[Item], flags: u8) -> Result<Node, ReError> {
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

fn compile_item(item: &Item, flags: u8) -> Result<Node, ReError> {
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

fn min_width(node: &Node) -> u64 {
    match node {
        Node::Set(_) => 1,
        Node::Concat(v) => v.iter().map(min_width).sum(),
        Node::Alt(v) => v.iter().map(min_width).min().unwrap_or(0),
        Node::Repeat { node, min, .. } => min_width(node) * u64::from(*min),
        Node::Assert(_) | Node::Look { .. } => 0,
    }
}

/// Translate into the `regex` crate's syntax, or `None` for what it cannot express.
fn to_rust(node: &Node, out: &mut String, uses_boundary: &mut bool) -> bool {
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

// ─────────────────────────────────────────────────────────────────────────────
// Python `re`: the backtracking matcher (for what the `regex` crate cannot express)
// ─────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Debug)]
enum Inst {
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
struct Prog {
    insts: Vec<Inst>,
    sets: Vec<CharSet>,
    /// Lookaround bodies.
    subs: Vec<Prog>,
    /// The characters a match can start with (`None` when a match can be empty): other start
    /// positions are skipped, as `sre`'s search prefix check does.
    first: Option<CharSet>,
}

/// The characters a match of `node` can consume first, and whether it can match empty.
fn first_chars(node: &Node) -> (CharSet, bool) {
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

struct ProgBuilder<'a> {
    prog: Prog,
    /// Lookaround bodies already compiled (an unrolled repeat reuses them).
    looks: HashMap<*const Node, usize>,
    _marker: std::marker::PhantomData<&'a Node>,
}

impl<'a> ProgBuilder<'a> {
    fn build(node: &'a Node) -> Prog {
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

    fn pc(&self) -> usize {
        self.prog.insts.len()
    }

    fn emit(&mut self, node: &'a Node) {
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
struct StateHasher(u64);

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

type Visited = HashSet<u64, BuildHasherDefault<StateHasher>>;

fn char_at(text: &str, pos: usize) -> Option<char> {
    text.get(pos..).and_then(|s| s.chars().next())
}

fn char_before(text: &str, pos: usize) -> Option<char> {
    text.get(..pos).and_then(|s| s.chars().next_back())
}

fn assertion_holds(a: Assertion, text: &str, pos: usize) -> bool {
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
    fn match_at(
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
    fn search(&self, text: &str, start: usize, must_advance: bool) -> Option<(usize, usize)> {
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

/// A compiled Python regex.
#[derive(Debug)]
pub struct PyRegex {
    prog: Prog,
    fast: Option<regex::Regex>,
    uses_boundary: bool,
}

impl PyRegex {
    /// `re.compile(pattern, re.IGNORECASE if ignorecase else 0)`.
    pub fn new(pattern: &str, ignorecase: bool) -> Result<PyRegex, ReError> {
        let (items, flags) = parse_pattern(pattern, if ignorecase { FLAG_I } else { 0 })?;
        let node = compile_items(&items, flags)?;
        let prog = ProgBuilder::build(&node);
        let mut rust = String::new();
        let mut uses_boundary = false;
        let fast = if min_width(&node) > 0 && to_rust(&node, &mut rust, &mut uses_boundary) {
            regex::RegexBuilder::new(&rust)
                .size_limit(64 << 20)
                .dfa_size_limit(16 << 20)
                .build()
                .ok()
        } else {
            None
        };
        Ok(PyRegex {
            prog,
            fast,
            uses_boundary,
        })
    }

    fn fast_for(&self, text: &str) -> Option<&regex::Regex> {
        let fast = self.fast.as_ref()?;
        if text.is_empty() {
            return None;
        }
        if self.uses_boundary
            && text
                .chars()
                .any(|c| tables().word_mismatch.contains(c as u32))
        {
            return None;
        }
        Some(fast)
    }

    /// `[m.span() for m in finditer(text)]` (byte offsets).
    pub fn find_iter(&self, text: &str) -> Vec<(usize, usize)> {
        if let Some(fast) = self.fast_for(text) {
            return fast.find_iter(text).map(|m| (m.start(), m.end())).collect();
        }
        let mut out = Vec::new();
        let mut pos = 0;
        let mut must_advance = false;
        while pos <= text.len() {
            match self.prog.search(text, pos, must_advance) {
                Some((s, e)) => {
                    out.push((s, e));
                    must_advance = s == e;
                    pos = e;
                }
                None => break,
            }
        }
        out
    }

    /// `bool(search(text))`.
    pub fn search(&self, text: &str) -> bool {
        match self.fast_for(text) {
            Some(fast) => fast.is_match(text),
            None => self.prog.search(text, 0, false).is_some(),
        }
    }

    /// `bool(fullmatch(text))`.
    pub fn fullmatch(&self, text: &str) -> bool {
        self.prog
            .match_at(text, 0, false, true, &mut Visited::default())
            .is_some()
    }

    /// `sub(repl, text)` with a replacement free of backslashes and group references.
    pub fn sub(&self, text: &str, repl: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut prev = 0;
        for (s, e) in self.find_iter(text) {
            out.push_str(&text[prev..s]);
            out.push_str(repl);
            prev = e;
        }
        out.push_str(&text[prev..]);
        out
    }
}

// ─────────────────────────────────────────────────────────────────────────────
// Prebuilt patterns (litellm 1.110.2 `patterns.json`, as facts: the reference's appendices)
// ─────────────────────────────────────────────────────────────────────────────

/// One prebuilt pattern: its regex and, for contextual patterns, the keyword regex that must
/// occur near a match.
#[derive(Clone, Copy, Debug)]
pub struct Prebuilt {
    pub name: &'static str,
    pub regex: &'static str,
    pub keyword: Option<&'static str>,
}

/// The 85 prebuilt patterns, in `patterns.json` order. Only `nl_bsn_contextual` accepts
/// spelled-out digits.
pub const PREBUILT: &[Prebuilt] = &[
    Prebuilt {
        name: "us_ssn",
        regex: r#"\b\d{3}-\d{2}-\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "us_ssn_no_dash",
        regex: r#"\b(?!000|666|9\d{2})\d{3}(?!00)\d{2}(?!0000)\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "email",
        regex: r#"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "us_phone",
        regex: r#"\b(?:\+?1[\s.-]?)?\(?([0-9]{3})\)?[\s.-]?([0-9]{3})[\s.-]?([0-9]{4})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "visa",
        regex: r#"\b4\d{3}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "mastercard",
        regex: r#"\b5[1-5]\d{2}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "amex",
        regex: r#"\b3[47]\d{2}[\s\-]?\d{6}[\s\-]?\d{5}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "discover",
        regex: r#"\b6(?:011|5\d{2})[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "credit_card",
        regex: r#"(?:\b4\d{3}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b|\b5[1-5]\d{2}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b|\b3[47]\d{2}[\s\-]?\d{6}[\s\-]?\d{5}\b|\b6(?:011|5\d{2})[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b)"#,
        keyword: None,
    },
    Prebuilt {
        name: "aws_access_key",
        regex: r#"\b(AKIA[0-9A-Z]{16})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "aws_secret_key",
        regex: r#"\b([A-Za-z0-9/+=]{40})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "github_token",
        regex: r#"\b(gh[ps]_[a-zA-Z0-9]{36})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "slack_token",
        regex: r#"\b(xox[pboa]-[0-9]{10,13}-[0-9]{10,13}-[a-zA-Z0-9]{24,32})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "generic_api_key",
        regex: r#"\b([Aa][Pp][Ii][-_]?[Kk][Ee][Yy][\s:=]+['"]?[A-Za-z0-9_\-]{20,}['"]?)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "openai_api_key",
        regex: r#"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,200}T3BlbkFJ(?:(?!sk-(?:proj|svcacct|admin|None)-)[A-Za-z0-9_\-]){20,200}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9_]))"#,
        keyword: None,
    },
    Prebuilt {
        name: "anthropic_api_key",
        regex: r#"(?:(?<![A-Za-z0-9])|(?<=\\[nrt])|(?<=\\u[0-9A-F]{4})|(?<=%[0-9A-F]{2})|(?<=%25[0-9A-F]{2}))sk-ant-[A-Za-z0-9_\-]{20,}"#,
        keyword: None,
    },
    Prebuilt {
        name: "gemini_api_key",
        regex: r#"(?:(?<![A-Za-z0-9])|(?<=\\[nrt])|(?<=\\u[0-9A-F]{4})|(?<=%[0-9A-F]{2})|(?<=%25[0-9A-F]{2}))(?:(?-i:AIza)[A-Za-z0-9_\-]{33,36}|(?-i:AQ\.)[A-Za-z0-9_\-]{45,55})(?![A-Za-z0-9_])"#,
        keyword: None,
    },
    Prebuilt {
        name: "ipv4",
        regex: r#"\b(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "ipv6",
        regex: r#"(?<![0-9a-fA-F:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,7}:|:(?::[0-9a-fA-F]{1,4}){1,7}|::|(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}|(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}|(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}|(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(?::[0-9a-fA-F]{1,4}){1,6})(?![0-9a-fA-F:])"#,
        keyword: None,
    },
    Prebuilt {
        name: "url",
        regex: r#"\b(?:https?://|www\.)[^\s/$.?#].[^\s]*\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_us",
        regex: r#"\b([A-Z][0-9]{8}|[0-9]{9})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_uk",
        regex: r#"\b[0-9]{9}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_germany",
        regex: r#"\b[CFGHJKLMNPRTVWXYZ0-9]{9}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_france",
        regex: r#"\b[0-9]{2}[A-Z]{2}[0-9]{5}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_netherlands",
        regex: r#"\b[A-Z]{2}[A-Z0-9]{6}[0-9]\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_canada",
        regex: r#"\b([A-Z]{2}[0-9]{6}|[A-Z][0-9]{6}[A-Z]{2})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_india",
        regex: r#"\b[A-Z][0-9]{7}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_australia",
        regex: r#"\b[A-Z][0-9]{7}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_china",
        regex: r#"\b[EeGg][0-9]{8}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_japan",
        regex: r#"\b[A-Z]{2}[0-9]{7}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "gender_sexual_orientation",
        regex: r#"\b(non-?binary|enby|genderqueer|genderfluid|gender-?fluid|agender|bigender|pangender|two-?spirit|trans(gender|sexual|masc|fem)?|cis(gender)?|intersex|MTF|FTM|AMAB|AFAB|assigned\s+(male|female)\s+at\s+birth|gay|lesbian|bisexual|pansexual|omnisexual|polysexual|asexual|aromantic|demisexual|heterosexual|homosexual|queer|LGBTQ\+?|LGBT\+?|LGBTQIA\+?|same-?sex|opposite-?sex|sexual\s+orientation|sexual\s+preference|gender\s+identity|sex\s+change|gender\s+reassignment|gender\s+confirmation|sexual\s+minority|he\/him|she\/her|they\/them|xe\/xem|ze\/zir|wom[ae]ns?|females?|males?)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "race_ethnicity_national_origin",
        regex: r#"\b(caucasian|african[- ]?american|black|white|asian|hispanic|latino|latina|latinx|pacific\s+islander|native\s+american|indigenous|first\s+nations|aboriginal|mestizo|mulatto|biracial|multiracial|mixed[- ]?race|person\s+of\s+colou?r|POC|BIPOC|ethnic(ity)?|racial|race|arab|middle\s+eastern|south\s+asian|east\s+asian|southeast\s+asian|european|african|caribbean|west\s+indian|haitian|jamaican|cuban|puerto\s+rican|mexican|dominican|salvadoran|guatemalan|honduran|colombian|venezuelan|peruvian|brazilian|chinese|japanese|korean|vietnamese|filipino|filipina|indian|pakistani|bangladeshi|sri\s+lankan|nepali|thai|indonesian|malaysian|burmese|cambodian|laotian|hmong|somali|ethiopian|nigerian|ghanaian|kenyan|south\s+african|egyptian|moroccan|algerian|iranian|iraqi|syrian|lebanese|palestinian|israeli|turkish|afghan|uzbek|kazakh|russian|ukrainian|polish|german|italian|irish|british|french|spanish|portuguese|greek|albanian|serbian|croatian|bosnian|romani|roma|gypsy|jewish|ashkenazi|sephardic|mizrahi|native\s+hawaiian|samoan|tongan|fijian|guamanian|chamorro|inuit|aleut|metis|maori|aboriginal\s+australian|torres\s+strait)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "religion",
        regex: r#"\b(christians?|catholics?|protestants?|baptists?|methodists?|lutherans?|presbyterians?|episcopal|pentecostal|evangelicals?|orthodox\s+christian|mormons?|latter[- ]?day\s+saint|LDS|jehovah'?s?\s+witness(es)?|seventh[- ]?day\s+adventist|amish|mennonite|quakers?|jewish|jews?|judaism|orthodox\s+jew|hasidic|muslims?|islam(ic)?|sunni|shia|shiite|sufi|nation\s+of\s+islam|hindus?(ism)?|buddhists?|buddhism|sikhs?(ism)?|jains?(ism)?|shinto|taoists?|taoism|confucian|zoroastrian|baha'?i|rastafari(an)?|pagans?|wiccans?|druids?|satanist|scientolog(y|ist)|unitarian|agnostics?|atheists?|secular|non-?religious|spiritual\s+but\s+not\s+religious|religious\s+belief|religious\s+practice|place\s+of\s+worship|church|mosque|synagogue|temple|gurdwara|kosher|halal|sabbath|shabbat|ramadan|lent|yom\s+kippur|rosh\s+hashanah|diwali|eid|hijab|yarmulke|kippah|turban|religious\s+head\s*covering)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "age_discrimination",
        regex: r#"\b(elderly|senior\s+citizens?|seniors?|old\s+age|aged\s+\d+|retirees?|retired|pensioners?|baby\s+boomers?|boomers?|geriatric|over\s+the\s+hill|too\s+old|too\s+young|young\s+person|millennials?|gen[- ]?z|junior|age\s+discrimination|ageism|years?\s+old|\d+\s*years?\s*old|over\s+\d+|under\s+\d+|older\s+workers?|older\s+employees?|older\s+candidates?|in\s+their\s+\d{2}s?|date\s+of\s+birth|DOB|birth\s*date|born\s+in\s+\d{4}|age\s+\d{2,3})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "disability",
        regex: r#"\b(disabled|disabilit(y|ies)|handicap(ped)?|impair(ed|ment|ments)?|wheelchair|blind(ness)?|deaf(ness)?|hard\s+of\s+hearing|hearing\s+impaired|visually\s+impaired|mute|paralyz(ed|is)|quadriplegic|paraplegic|amputee|prosthetic|cripple[d]?|mentally\s+ill|mental\s+illness|mental\s+disorder|psychiatric|schizophren(ia|ic)|bipolar|depression|depressed|anxiety\s+disorder|PTSD|autis(m|tic)|asperger'?s?|ADHD|ADD|dyslexia|dyslexic|learning\s+disabilit(y|ies)|intellectual\s+disabilit(y|ies)|down'?s?\s+syndrome|cerebral\s+palsy|epilep(sy|tic)|seizure\s+disorder|multiple\s+sclerosis|MS\s+patient|parkinson'?s?|alzheimer'?s?|dementia|chronic\s+illness|chronic\s+pain|fibromyalgia|lupus|crohn'?s?|cancer\s+patient|HIV|AIDS|diabetic|diabetes|SSI|SSDI|disability\s+benefits|disability\s+income|ADA|reasonable\s+accommodation|special\s+needs|service\s+animal|service\s+dog|guide\s+dog)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "marital_family_status",
        regex: r#"\b(married|unmarried|single|divorced|separated|widowed|widow|widower|spouse|husband|wife|domestic\s+partner|civil\s+union|common[- ]?law|marital\s+status|maiden\s+name|alimony|child\s+support|custody|pregnant|pregnancy|maternity|paternity|expecting|family\s+status|number\s+of\s+children|dependents|childless|child[- ]?free|single\s+parent|single\s+mother|single\s+father|unwed|out\s+of\s+wedlock|illegitimate|family\s+planning|birth\s+control|fertility|IVF|adoption|adopted|foster\s+parent|guardian)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "military_status",
        regex: r#"\b(veterans?|military|armed\s+forces|army|navy|air\s+force|marines?(?:\s+corps)?|coast\s+guard|national\s+guard|reserves?(?:ist)?|active\s+duty|deployment|deployed|enlisted|commissioned|honorable\s+discharge|dishonorable\s+discharge|VA\s+benefits|GI\s+bill|military\s+service|service\s+members?|servicemembers?|SCRA|MLA|military\s+lending)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "public_assistance",
        regex: r#"\b(welfare|public\s+assistance|food\s+stamps|SNAP|WIC|TANF|medicaid|section\s+8|housing\s+voucher|subsidized\s+housing|public\s+housing|government\s+benefits|social\s+services|unemployment\s+(benefits|insurance)|UI\s+benefits|EBT|benefit\s+recipient)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "weapons_firearms",
        regex: r#"\b(gun|firearm|rifle|shotgun|pistol|handgun|revolver|semi[- ]?automatic|automatic\s+weapon|assault\s+rifle|AR-?15|AK-?47|machine\s+gun|submachine\s+gun|SMG|ammunition|ammo|bullet(s)?|cartridge|caliber|9mm|\.45|\.38|\.357|\.22|12\s+gauge|hollow\s+point|armor\s+piercing|magazine|clip|suppressor|silencer|bump\s+stock|trigger|barrel|concealed\s+carry|open\s+carry|CCW|ghost\s+gun|3D\s+printed\s+gun|untraceable\s+firearm|straw\s+purchase|gun\s+show|FFL|firearms\s+dealer)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "weapons_other",
        regex: r#"\b(knife|blade|machete|switchblade|butterfly\s+knife|balisong|brass\s+knuckles|knuckle\s+duster|baton|blackjack|taser|stun\s+gun|pepper\s+spray|mace|crossbow|bow\s+and\s+arrow|compound\s+bow|sword|katana|throwing\s+star|shuriken|nunchaku|nunchucks|tomahawk|hatchet|axe\s+attack|ice\s+pick|garrote|zip\s+gun|improvised\s+weapon|shiv|shank|pipe\s+bomb)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "explosives",
        regex: r#"\b(bomb|explosive|detonate|detonator|detonation|IED|improvised\s+explosive|pipe\s+bomb|mail\s+bomb|car\s+bomb|truck\s+bomb|suicide\s+bomb|vest\s+bomb|dirty\s+bomb|fertilizer\s+bomb|ANFO|ammonium\s+nitrate|C-?4|plastic\s+explosive|dynamite|TNT|nitroglycerin|black\s+powder|gunpowder|blasting\s+cap|fuse|timer\s+device|remote\s+detonation|pressure\s+cooker\s+bomb|nail\s+bomb|shrapnel|fragmentation|incendiary|molotov|firebomb|thermite|napalm|grenade|hand\s+grenade|frag\s+grenade|flash\s+bang|smoke\s+bomb|landmine|claymore|semtex|RDX|PETN|how\s+to\s+(make|build|construct)\s+(a\s+)?bomb)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "violence_threats",
        regex: r#"\b(kill|murder|assassinate|execute|slaughter|massacre|bloodbath|genocide|ethnic\s+cleansing|mass\s+shooting|shooting\s+spree|rampage|gun\s+down|mow\s+down|hunt\s+(down|them)|take\s+(them|him|her)\s+out|eliminate|neutralize|liquidate|hit\s+(list|man)|contract\s+kill|hired\s+gun|death\s+threat|threat(en)?\s+to\s+kill|gonna\s+kill|going\s+to\s+kill|want\s+(to|him|her|them)\s+dead|deserve\s+to\s+die|need(s)?\s+to\s+die|shoot\s+up|bomb\s+threat|terrorize|reign\s+of\s+terror|burning\s+down|burn\s+it\s+down|blow\s+(it|them|this)\s+up|torture|mutilate|dismember|decapitate|behead|strangle|suffocate|drown|poison|stab|slash|cut\s+(throat|them)|slit\s+(throat|wrists)|beat\s+to\s+death|bludgeon|maim|cripple|kneecap)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "terrorism",
        regex: r#"\b(terroris[tm]|jiha[di]|mujahideen|martyr(dom)?\s+operation|holy\s+war|caliphate|ISIS|ISIL|Islamic\s+State|Al[- ]?Qaeda|Al[- ]?Shabaab|Boko\s+Haram|Hezbollah|Hamas|Taliban|lone\s+wolf|radicalize[d]?|radicalization|extremis[tm]|white\s+supremac(y|ist)|neo[- ]?nazi|skinhead|aryan|white\s+power|white\s+nationalist|race\s+war|day\s+of\s+the\s+rope|Turner\s+Diaries|accelerationism|boogaloo|proud\s+boys|oath\s+keepers|three\s+percenter|militia\s+movement|domestic\s+terroris[tm]|cell|sleeper\s+cell|attack\s+planning|soft\s+target|hard\s+target|high\s+value\s+target|infidel|kuffar|crusader|manifest(o)?|insurgent|insurrection|armed\s+uprising|overthrow\s+the\s+government|civil\s+war\s+2|RAHOWA|fourteen\s+words|1488|88|HH)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "self_harm_suicide",
        regex: r#"\b(suicid(e|al)|kill\s+myself|end\s+(my|it\s+all)|take\s+my\s+(own\s+)?life|don'?t\s+want\s+to\s+live|want\s+to\s+die|better\s+off\s+dead|no\s+reason\s+to\s+live|nothing\s+to\s+live\s+for|end\s+the\s+pain|self[- ]?harm|cut(ting)?\s+myself|slit\s+(my\s+)?wrists|overdose|OD|hang\s+myself|jump\s+off|jump\s+from|bridge\s+jump|train\s+tracks|pills\s+to\s+die|lethal\s+dose|LD50|how\s+to\s+kill\s+(myself|yourself)|suicide\s+method|painless\s+death|exit\s+bag|helium\s+hood|suicide\s+note|goodbye\s+letter|final\s+letter|last\s+words|pro[- ]?ana|pro[- ]?mia|thinspiration|self[- ]?starv(e|ation)|purging)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "illegal_activities",
        regex: r#"\b(money\s+launder(ing)?|launder\s+money|structuring|smurfing|wash\s+(the\s+)?money|clean\s+money|dirty\s+money|drug\s+traffick(ing)?|narco|cartel|drug\s+deal(er|ing)?|drug\s+lord|kingpin|cocaine|heroin|fentanyl|meth(amphetamine)?|crack|opioid|human\s+traffick(ing)?|sex\s+traffick(ing)?|smuggl(e|ing)|contraband|black\s+market|dark\s+web|darknet|hitman|contract\s+killer|murder\s+for\s+hire|arson|extort(ion)?|blackmail|ransom|kidnap(ping)?|abduct(ion)?|hostage|fraud\s+scheme|ponzi|pyramid\s+scheme|identity\s+theft|credit\s+card\s+fraud|wire\s+fraud|bank\s+fraud|embezzle(ment)?|brib(e|ery)|kickback|racketeering|RICO|organized\s+crime|mob|mafia|syndicate|gang\s+activity|criminal\s+enterprise)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "harassment_hate",
        regex: r#"\b(n[i1]gg[e3]r|f[a4]gg[o0]t|k[i1]ke|sp[i1]c|ch[i1]nk|g[o0]{2}k|w[e3]tb[a4]ck|r[e3]t[a4]rd|tr[a4]nny|shemale|dyke|cunt|kill\s+all|gas\s+the|lynch|hang\s+the|exterminate|subhuman|untermensch|mongrel|mud\s+people|race\s+traitor|coal\s+burner|oil\s+driller|oven|lampshade|helicopter\s+ride|throw\s+from|rooftop|wood\s+chipper|dox(x)?(ing)?|swat(ting)?|harass(ment)?|stalk(ing|er)?|cyber\s*bully|death\s+threat|rape\s+threat|bomb\s+threat|shoot\s+up|gonna\s+find\s+you|know\s+where\s+you\s+live|coming\s+for\s+you)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "nl_bsn_contextual",
        regex: r#"\b[0-9]{9}\b"#,
        keyword: Some(
            r#"(?:\b(?:BSN|B\.S\.N\.|burgerservicenummer|burger\s*service\s*nummer|sofi\s*nummer|sofinummer|persoonsnummer|identificatienummer|citizen\s*service\s*number)\b|8\s*5\s*\|\\\|)"#,
        ),
    },
    Prebuilt {
        name: "br_cpf",
        regex: r#"\d{3}\.\d{3}\.\d{3}(-|/)\d{2}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_cpf_unformatted",
        regex: r#"\b\d{11}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_phone_landline",
        regex: r#"(?:\(?\d{2}\)?\s?)?(?:9\d{4}|\d{4})-?\d{4}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_phone_mobile",
        regex: r#"(?:\+\d{1,3}\s?)?(?:\(?\d{2}\)?\s?)?9\d{4}-?\d{4}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_cep",
        regex: r#"\b\d{5}-?\d{3}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_cnpj",
        regex: r#"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_rg",
        regex: r#"\b\d{1,2}\.\d{3}\.\d{3}-[\dXx]\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "au_tfn",
        regex: r#"\b\d{8,9}\b"#,
        keyword: Some(
            r#"\b(?:TFN|T\.F\.N\.|tax\s*file\s*(?:number|no\.?)|tax\s*file\s*#?|ATO\s*number)\b"#,
        ),
    },
    Prebuilt {
        name: "au_abn",
        regex: r#"\b\d{2}\s?\d{3}\s?\d{3}\s?\d{3}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "au_medicare",
        regex: r#"\b(?:\d{4}\s?\d{5}\s?\d{1}|\d{11})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "iban",
        regex: r#"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "fr_nir",
        regex: r#"\b[12][0-9]{2}(0[1-9]|1[0-2])[0-9]{2}[0-9]{3}[0-9]{3}[0-9]{2}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "eu_iban_enhanced",
        regex: r#"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{4}[0-9]{7}[A-Z0-9]{0,16}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "fr_phone",
        regex: r#"(?<!\d)(?:\+33|0033|0)[1-9][0-9]{8}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "eu_vat",
        regex: r#"\b(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)[0-9A-Z]{8,12}\b"#,
        keyword: Some(
            r#"\b(?:VAT|V\.A\.T\.|TVA|IVA|BTW|MWST|value\s*added\s*tax|tax\s*number|tax\s*id|fiscal\s*number|fiscal\s*code)\b"#,
        ),
    },
    Prebuilt {
        name: "eu_passport_generic",
        regex: r#"\b[0-9]{2}[A-Z]{2}[0-9]{5}\b"#,
        keyword: Some(
            r#"\b(?:passport|passeport|travel\s*document|document\s*number|reisepass|paspoort|paszport)\b"#,
        ),
    },
    Prebuilt {
        name: "fr_postal_code",
        regex: r#"\b[0-9]{5}\b"#,
        keyword: Some(r#"\b(?:code\s*postal|postal\s*code|CP|zip\s*code|postcode)\b"#),
    },
    Prebuilt {
        name: "street_address",
        regex: r#"\b\d{1,6}\s+[A-Za-z0-9][A-Za-z0-9\s.'-]*\s+(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Circle|Cir)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "airline_pnr",
        regex: r#"\b[A-Z]{6}\b"#,
        keyword: Some(
            r#"\b(?:PNR|booking\s*(?:reference|ref|code|number|confirmation)|reservation\s*(?:code|number|ref)|record\s*locator|confirmation\s*(?:code|number)|itinerary\s*(?:number|ref))\b"#,
        ),
    },
    Prebuilt {
        name: "skywards_number",
        regex: r#"\b(?:EK\s?)?\d{9,10}\b"#,
        keyword: Some(
            r#"\b(?:[Ss]kywards|frequent\s*flyer|FF\s*(?:number|no|#)|loyalty\s*(?:number|id|member)|member\s*(?:number|id|#)|miles\s*(?:account|number)|tier\s*(?:number|status))\b"#,
        ),
    },
    Prebuilt {
        name: "uae_emirates_id",
        regex: r#"\b784-?\d{4}-?\d{7}-?\d\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "uae_phone",
        regex: r#"(?<!\d)(?:\+971|00971|0)\s?(?:2|3|4|6|7|9|50|52|54|55|56|58)\s?\d{3}\s?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "flight_number",
        regex: r#"\b(?:EK|QF|BA|AA|LH|AF|SQ|CX|QR|EY|FZ|WY|GF|KU|SV|MS|RJ|ME|PK|AI|UL|WS|9W|6E)\s?\d{1,4}\b"#,
        keyword: Some(
            r#"\b(?:flight|departure|arrival|gate|boarding|schedule|operate|route|aircraft|plane|outbound|inbound|leg|sector|flying)\b"#,
        ),
    },
    Prebuilt {
        name: "sg_nric",
        regex: r#"\b[STFGM]\d{7}[A-Z]\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "sg_phone",
        regex: r#"(?<!\d)(?:\+65|0065|65)\s?[689]\d{3}\s?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "sg_postal_code",
        regex: r#"\b[0-8]\d{5}\b"#,
        keyword: Some(
            r#"\b(?:postal\s*code|postcode|zip\s*code|Singapore\s*\d|blk|block|address|HDB|flat|unit)\b"#,
        ),
    },
    Prebuilt {
        name: "passport_singapore",
        regex: r#"\b[EK]\d{7}\b"#,
        keyword: Some(r#"\b(?:passport|travel\s*document|document\s*number|immigration|ICA)\b"#),
    },
    Prebuilt {
        name: "sg_uen",
        regex: r#"\b(?:\d{8}[A-Z]|\d{9}[A-Z]|[TR]\d{2}[A-Z]{2}\d{4}[A-Z])\b"#,
        keyword: Some(
            r#"\b(?:UEN|company\s*registration|business\s*registration|ACRA|entity\s*number|ROC|ROS)\b"#,
        ),
    },
    Prebuilt {
        name: "sg_bank_account",
        regex: r#"\b\d{3}-\d{5,6}-\d{1,3}\b"#,
        keyword: Some(
            r#"\b(?:bank\s*account|account\s*number|DBS|OCBC|UOB|POSB|savings|current\s*account|bank\s*statement)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_sin",
        regex: r#"\b[1-9]\d{2}[\-\s]\d{3}[\-\s]\d{3}\b"#,
        keyword: Some(
            r#"\b(?:social\s*insurance\s*number|numéro\s*d'assurance\s*sociale|social\s*insurance|SIN|NAS)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_ohip",
        regex: r#"\b\d{4}[\-\s]?\d{3}[\-\s]?\d{3}[\-\s]?[A-Z]{2}\b"#,
        keyword: Some(
            r#"\b(?:OHIP\s*number|health\s*card\s*number|health\s*insurance\s*number|OHIP|health\s*card|health\s*insurance|ontario\s*health|health\s*number|carte\s*santé)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_on_drivers_licence",
        regex: r#"\b[A-Z]\d{4}[\-\s]\d{5}[\-\s]\d{5}\b"#,
        keyword: Some(
            r#"\b(?:driver'?s?\s*licen[cs]e\s*number|ontario\s*licen[cs]e\s*number|driver'?s?\s*licen[cs]e|licen[cs]e\s*number|DL\s*number|ontario\s*licen[cs]e|permis\s*de\s*conduire|numéro\s*de\s*permis)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_immigration_doc",
        regex: r#"\b(?:\d{4}[\-\s]\d{4}[\-\s]\d{2}|[TUFW]\d{8,10}|IMM[\-\s]?\d{4,5})\b"#,
        keyword: Some(
            r#"\b(?:unique\s*client\s*identifier|study\s*permit\s*number|work\s*permit\s*number|study\s*permit|work\s*permit|UCI|immigration|IRCC|permanent\s*resident|PR\s*card|permis\s*d'études|permis\s*de\s*travail|landed\s*immigrant|temporary\s*resident)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_bank_account",
        regex: r#"\b\d{5}[\-\s]\d{3}[\-\s]\d{7,12}\b"#,
        keyword: Some(
            r#"\b(?:bank\s*account|account\s*number|transit\s*number|institution\s*number|branch\s*number|routing\s*number|direct\s*deposit|void\s*cheque|chequing|savings\s*account|numéro\s*de\s*compte|dépôt\s*direct)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_postal_code",
        regex: r#"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][\-\s]?\d[ABCEGHJ-NPRSTV-Z]\d\b"#,
        keyword: Some(
            r#"\b(?:postal\s*code|zip\s*code|mailing\s*address|street\s*address|shipping\s*address|home\s*address|code\s*postal|postcode)\b"#,
        ),
    },
    Prebuilt {
        name: "uoft_student_id",
        regex: r#"\b10\d{8}\b"#,
        keyword: Some(
            r#"\b(?:student\s*id\s*number|student\s*number|employee\s*id\s*number|employee\s*number|student\s*id|employee\s*id|utorid|uoft\s*id|university\s*of\s*toronto|u\s*of\s*t)\b"#,
        ),
    },
    Prebuilt {
        name: "uoft_utorid",
        regex: r#"\b[a-z]{2,6}\d{1,4}\b"#,
        keyword: Some(
            r#"\b(?:utorid|utoid|utor\s*id|uoft\s*login|university\s*of\s*toronto\s*login|acorn\s*login|acorn\s*portal|quercus\s*login|quercus\s*course|portal\s*login|weblogin|shibboleth)\b"#,
        ),
    },
    Prebuilt {
        name: "uoft_tcard",
        regex: r#"\b\d{16}\b"#,
        keyword: Some(
            r#"\b(?:tcard\s*number|t-card\s*number|tcard|t-card|campus\s*card|campus\s*id|university\s*card)\b"#,
        ),
    },
];

struct CompiledPrebuilt {
    regex: Arc<PyRegex>,
    keyword: Option<Arc<PyRegex>>,
}

type PrebuiltEntry = Result<(Arc<PyRegex>, Option<Arc<PyRegex>>), String>;

/// A prebuilt pattern, compiled once per process.
fn prebuilt(name: &str) -> Result<CompiledPrebuilt, String> {
    static CACHE: OnceLock<Vec<OnceLock<PrebuiltEntry>>> = OnceLock::new();
    let Some(i) = PREBUILT.iter().position(|p| p.name == name) else {
        let names: Vec<&str> = PREBUILT.iter().map(|p| p.name).collect();
        return Err(format!(
            "Unknown pattern name: '{name}'. Available patterns: {}",
            names.join(", ")
        ));
    };
    let cache = CACHE.get_or_init(|| PREBUILT.iter().map(|_| OnceLock::new()).collect());
    let entry = cache[i].get_or_init(|| {
        let p = &PREBUILT[i];
        let regex = PyRegex::new(p.regex, true).map_err(|e| e.describe(p.regex))?;
        let keyword = match p.keyword {
            Some(k) => Some(Arc::new(PyRegex::new(k, true).map_err(|e| e.describe(k))?)),
            None => None,
        };
        Ok((Arc::new(regex), keyword))
    });
    match entry {
        Ok((regex, keyword)) => Ok(CompiledPrebuilt {
            regex: regex.clone(),
            keyword: keyword.clone(),
        }),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::pipeline::Message;

    fn build(extra: Value) -> ContentFilter {
        build_with(extra, &CategoryData::new())
    }

    fn build_with(extra: Value, data: &CategoryData) -> ContentFilter {
        let mut params = json!({"guardrail": "litellm_content_filter", "mode": "pre_call"});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        ContentFilter::from_params("t", &params, data).unwrap()
    }

    fn load_err(extra: Value) -> String {
        let mut params = json!({"guardrail": "litellm_content_filter", "mode": "pre_call"});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        ContentFilter::from_params("t", &params, &CategoryData::new()).unwrap_err()
    }

    /// The masked text, or the pipeline's error detail.
    fn run(f: &ContentFilter, text: &str) -> Result<String, String> {
        f.filter_text(text).map_err(|e| match e {
            FilterError::Blocked(b) => b.python_str(),
            FilterError::Internal(m) => m,
        })
    }

    fn prebuilt_rule(name: &str, action: &str) -> Value {
        json!({"pattern_type": "prebuilt", "pattern_name": name, "action": action})
    }

    fn regex_rule(pattern: &str, name: Option<&str>, action: &str) -> Value {
        let mut v = json!({"pattern_type": "regex", "pattern": pattern, "action": action});
        if let Some(n) = name {
            v["name"] = json!(n);
        }
        v
    }

    /// The reference's configuration C1.
    fn c1() -> ContentFilter {
        build(json!({
            "patterns": [
                prebuilt_rule("email", "MASK"),
                prebuilt_rule("us_ssn", "BLOCK"),
                prebuilt_rule("credit_card", "BLOCK"),
                regex_rule(r"EMP-\d{5}", Some("employee_id"), "MASK"),
                regex_rule(r"TKT-\d{4}", None, "MASK"),
            ],
            "blocked_words": [
                {"keyword": "Project Titan", "action": "BLOCK", "description": "internal codename"},
                {"keyword": "confidential", "action": "MASK"},
                {"keyword": "pass*word", "action": "MASK"},
                {"keyword": "forbidden", "action": "BLOCK"},
            ],
        }))
    }

    #[test]
    fn c1_masks_and_blocks_like_litellm() {
        let f = c1();
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "Contact me at John.Doe@Example.com please",
                Ok("Contact me at [EMAIL_REDACTED] please"),
            ),
            (
                "a@x.io and b@y.org",
                Ok("[EMAIL_REDACTED] and [EMAIL_REDACTED]"),
            ),
            (
                "My SSN is 123-45-6789",
                Err("{'error': 'Content blocked: us_ssn pattern detected', 'pattern': 'us_ssn'}"),
            ),
            (
                "Card: 4111-1111-1111-1112",
                Err(
                    "{'error': 'Content blocked: credit_card pattern detected', 'pattern': 'credit_card'}",
                ),
            ),
            (
                "Tell me about PROJECT TITAN now",
                Err(
                    "{'error': \"Content blocked: keyword 'project titan' detected (internal codename)\", 'keyword': 'project titan', 'description': 'internal codename'}",
                ),
            ),
            (
                "This is CONFIDENTIAL info, Confidential!",
                Ok("This is [KEYWORD_REDACTED] info, [KEYWORD_REDACTED]!"),
            ),
            ("nonconfidentiality", Ok("non[KEYWORD_REDACTED]ity")),
            (
                "my passXword and password and pass-word and passwd",
                Ok(
                    "my [KEYWORD_REDACTED] and [KEYWORD_REDACTED] and [KEYWORD_REDACTED] and passwd",
                ),
            ),
            (
                "ticket for EMP-12345",
                Ok("ticket for [EMPLOYEE_ID_REDACTED]"),
            ),
            ("see tkt-0042", Ok("see [CUSTOM_REGEX_REDACTED]")),
            (
                "a@x.io 123-45-6789",
                Err("{'error': 'Content blocked: us_ssn pattern detected', 'pattern': 'us_ssn'}"),
            ),
            (
                "١٢٣-٤٥-٦٧٨٩",
                Err("{'error': 'Content blocked: us_ssn pattern detected', 'pattern': 'us_ssn'}"),
            ),
            (
                "confidential and forbidden",
                Err(
                    "{'error': \"Content blocked: keyword 'forbidden' detected\", 'keyword': 'forbidden', 'description': None}",
                ),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                run(&f, input),
                want.map(str::to_string).map_err(str::to_string),
                "{input:?}"
            );
        }
    }

    #[test]
    fn redaction_settings_from_yaml_are_ignored() {
        let f = build(json!({
            "patterns": [prebuilt_rule("email", "MASK")],
            "blocked_words": [{"keyword": "secret", "action": "MASK"}],
            "pattern_redaction_format": "<<{pattern_name}>>",
            "keyword_redaction_tag": "***",
        }));
        assert_eq!(
            run(&f, "x@y.com secret").unwrap(),
            "[EMAIL_REDACTED] [KEYWORD_REDACTED]"
        );
    }

    #[test]
    fn block_patterns_see_only_earlier_masks() {
        let mask_first = build(json!({"patterns": [
            prebuilt_rule("email", "MASK"), regex_rule("@", Some("at_sign"), "BLOCK")]}));
        assert_eq!(run(&mask_first, "a@x.io").unwrap(), "[EMAIL_REDACTED]");
        let block_first = build(json!({"patterns": [
            regex_rule("@", Some("at_sign"), "BLOCK"), prebuilt_rule("email", "MASK")]}));
        assert!(run(&block_first, "a@x.io").unwrap_err().contains("at_sign"));
        // A BLOCK regex after a MASK fires on the tag itself.
        let tag = build(json!({"patterns": [
            prebuilt_rule("email", "MASK"), regex_rule("REDACTED", Some("tagword"), "BLOCK")]}));
        assert!(run(&tag, "a@x.io").unwrap_err().contains("tagword"));
    }

    #[test]
    fn blocked_words_scan_tags_and_earlier_masks() {
        let f = build(json!({
            "patterns": [prebuilt_rule("email", "MASK")],
            "blocked_words": [{"keyword": "redacted", "action": "BLOCK"}],
        }));
        assert!(
            run(&f, "mail a@x.io")
                .unwrap_err()
                .contains("keyword 'redacted'")
        );
        let g = build(json!({"blocked_words": [
            {"keyword": "secret", "action": "MASK"}, {"keyword": "keyword", "action": "BLOCK"}]}));
        assert!(
            run(&g, "a secret")
                .unwrap_err()
                .contains("keyword 'keyword'")
        );
    }

    #[test]
    fn duplicate_keywords_keep_first_position_and_last_values() {
        let f = build(json!({"blocked_words": [
            {"keyword": "Alpha", "action": "BLOCK"}, {"keyword": "ALPHA", "action": "MASK"}]}));
        assert_eq!(run(&f, "alpha").unwrap(), "[KEYWORD_REDACTED]");
    }

    #[test]
    fn keyword_wildcard_is_one_optional_char_but_not_a_newline() {
        let f = build(json!({"blocked_words": [{"keyword": "x*y", "action": "MASK"}]}));
        assert_eq!(run(&f, "x\ny xzy").unwrap(), "x\ny [KEYWORD_REDACTED]");
    }

    #[test]
    fn spans_of_one_pattern_merge_when_touching_and_groups_take_the_first_name() {
        let digit = build(json!({"patterns": [regex_rule(r"\d", Some("digit"), "MASK")]}));
        assert_eq!(run(&digit, "abc 123").unwrap(), "abc [DIGIT_REDACTED]");
        let abc = build(json!({"patterns": [
            regex_rule("foo", Some("a"), "MASK"),
            regex_rule("bar", Some("b"), "MASK"),
            regex_rule("obarb", Some("c"), "MASK"),
        ]}));
        assert_eq!(run(&abc, "foobar").unwrap(), "[A_REDACTED][B_REDACTED]");
        assert_eq!(run(&abc, "foobarbaz").unwrap(), "[A_REDACTED]az");
        assert_eq!(
            run(&abc, "xfooobarbx").unwrap(),
            "x[A_REDACTED][C_REDACTED]x"
        );
        let phone = build(json!({"patterns": [
            prebuilt_rule("us_phone", "MASK"),
            prebuilt_rule("us_ssn_no_dash", "MASK"),
            prebuilt_rule("ipv4", "MASK"),
        ]}));
        assert_eq!(
            run(&phone, "id 1234567890").unwrap(),
            "id [US_PHONE_REDACTED]"
        );
    }

    #[test]
    fn contextual_patterns_need_a_nearby_keyword() {
        let f = build(json!({"patterns": [
            prebuilt_rule("au_tfn", "MASK"),
            prebuilt_rule("nl_bsn_contextual", "MASK"),
            prebuilt_rule("airline_pnr", "MASK"),
        ]}));
        for (input, want) in [
            ("My TFN 123456789", "My TFN [AU_TFN_REDACTED]"),
            ("TFN number is 123456789", "TFN number is 123456789"),
            ("order 123456789", "order 123456789"),
            (
                "BSN: one two three four five six seven eight nine",
                "BSN: [NL_BSN_CONTEXTUAL_REDACTED]",
            ),
            ("my PNR is abcdef", "my PNR is [AIRLINE_PNR_REDACTED]"),
            (
                "PNR: ABCDEF and later QWERTY",
                "PNR: [AIRLINE_PNR_REDACTED] and later QWERTY",
            ),
        ] {
            assert_eq!(run(&f, input).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn prebuilt_quirks() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["passport_us", "gemini_api_key", "aws_access_key"],
                "passport a12345678",
                "passport [PASSPORT_US_REDACTED]",
            ),
            (
                &["passport_us", "gemini_api_key", "aws_access_key"],
                "key aizaSyA1234567890abcdefghijklmnopqrstu",
                "key aizaSyA1234567890abcdefghijklmnopqrstu",
            ),
            (
                &["passport_us", "gemini_api_key", "aws_access_key"],
                "akiaabcdefghijklmnop",
                "[AWS_ACCESS_KEY_REDACTED]",
            ),
            (
                &["ipv6"],
                "use std::vector here",
                "use st[IPV6_REDACTED]vector here",
            ),
            (
                &["passport_netherlands"],
                "my password1 is weak",
                "my [PASSPORT_NETHERLANDS_REDACTED] is weak",
            ),
            (
                &["terrorism"],
                "kubectl apply the manifest",
                "kubectl apply the [TERRORISM_REDACTED]",
            ),
            (
                &["street_address"],
                "I took 2 steps down the road",
                "I took [STREET_ADDRESS_REDACTED]",
            ),
            (
                &["generic_api_key"],
                "api_key = 'abcdefghijklmnopqrstuvwxyz'",
                "[GENERIC_API_KEY_REDACTED]'",
            ),
            (
                &["br_phone_landline"],
                "ts 1700000000123",
                "ts [BR_PHONE_LANDLINE_REDACTED]123",
            ),
            (
                &["aws_secret_key", "url", "street_address"],
                "commit 3f786850e387550fdab836ed7e6dc881de23001b",
                "commit [AWS_SECRET_KEY_REDACTED]",
            ),
        ];
        for (names, input, want) in cases {
            let patterns: Vec<Value> = names.iter().map(|n| prebuilt_rule(n, "MASK")).collect();
            let f = build(json!({ "patterns": patterns }));
            assert_eq!(run(&f, input).unwrap(), *want, "{names:?} {input:?}");
        }
    }

    #[test]
    fn every_prebuilt_pattern_compiles() {
        for p in PREBUILT {
            assert!(prebuilt(p.name).is_ok(), "{}", p.name);
        }
        assert_eq!(PREBUILT.len(), 85);
    }

    fn categories() -> CategoryData {
        let mut d = CategoryData::new();
        d.insert_text(
            "violence.yaml",
            "category_name: violence\ndefault_action: BLOCK\nkeywords:\n  - keyword: murder\n    severity: medium\n  - keyword: massacre\n    severity: high\n  - keyword: want to die\n    severity: high\n  - keyword: shove\n    severity: low\nexceptions:\n  - historical\n",
        );
        d.insert_text(
            "minors.yaml",
            "category_name: minors\nidentifier_words: [kid, child]\nadditional_block_words: [sexy, \"dark web\"]\nalways_block_keywords:\n  - keyword: csam\nphrase_patterns:\n  - '\\bput\\b.{0,10}\\bmoney\\b'\n  - '('\n",
        );
        d.insert_text(
            "slurs.json",
            r#"[{"id": 1, "match": "ba*sta*rd|Jerk", "severity": 3}, {"id": 2, "match": "jerk|meanie", "severity": 1}]"#,
        );
        d.insert_text(
            "blocked.yaml",
            "blocked_words:\n  - keyword: Zeta\n    action: BLOCK\n    description: from file\n  - keyword: nope\n",
        );
        d
    }

    #[test]
    fn category_keywords_first_match_word_bounds_and_exceptions() {
        let data = categories();
        let block = build_with(
            json!({"categories": [{"category": "violence", "action": "BLOCK"}]}),
            &data,
        );
        assert_eq!(
            run(&block, "I WANT TO DIET now").unwrap_err(),
            "{'error': \"Content blocked: violence category keyword 'want to die' detected (severity: high)\", 'category': 'violence', 'keyword': 'want to die', 'severity': 'high'}"
        );
        assert_eq!(
            run(&block, "murderous intent").unwrap(),
            "murderous intent",
            "single words need word boundaries"
        );
        assert_eq!(
            run(&block, "murder, prehistorical").unwrap(),
            "murder, prehistorical",
            "an exception anywhere (even inside a word) disables category checks"
        );
        assert_eq!(
            run(&block, "a shove").unwrap(),
            "a shove",
            "below the threshold"
        );
        let mask = build_with(
            json!({"categories": [{"category": "violence", "action": "MASK"}]}),
            &data,
        );
        assert_eq!(
            run(&mask, "I will murder him and murderous murder, a massacre").unwrap(),
            "I will [KEYWORD_REDACTED] him and [KEYWORD_REDACTED]ous [KEYWORD_REDACTED], a massacre",
            "only the first matching keyword is masked, without word boundaries"
        );
    }

    #[test]
    fn conditional_categories_phrases_and_always_block() {
        let data = categories();
        let block = build_with(
            json!({"categories": [{"category": "minors", "action": "BLOCK"}]}),
            &data,
        );
        assert!(
            run(&block, "The kid looked sexy.")
                .unwrap_err()
                .contains("conditional match 'kid + sexy'")
        );
        assert_eq!(
            run(&block, "The kid is nice. She is sexy.").unwrap(),
            "The kid is nice. She is sexy."
        );
        assert!(
            run(&block, "My kidney on the dark web")
                .unwrap_err()
                .contains("'kid + dark web'")
        );
        assert_eq!(
            run(&block, "where do I put my money").unwrap_err(),
            "{'error': \"Content blocked: minors conditional match 'phrase: \\\\bput\\\\b.{0,10}\\\\bmoney\\\\b' detected (severity: high)\", 'category': 'minors', 'matched_phrase': 'phrase: \\\\bput\\\\b.{0,10}\\\\bmoney\\\\b', 'severity': 'high'}"
        );
        let mask = build_with(
            json!({"categories": [{"category": "minors", "action": "MASK"}]}),
            &data,
        );
        assert_eq!(
            run(&mask, "The kid looked sexy.").unwrap(),
            "The kid looked sexy.",
            "MASK does nothing for conditional matches"
        );
        assert_eq!(
            run(&mask, "looking for CSAM files").unwrap(),
            "looking for [KEYWORD_REDACTED] files",
            "always-block keywords follow the configured action"
        );
    }

    #[test]
    fn json_categories_and_missing_files() {
        let data = categories();
        let f = build_with(
            json!({"categories": [{"category": "slurs", "action": "MASK", "severity_threshold": "low"}]}),
            &data,
        );
        assert_eq!(run(&f, "you basstard").unwrap(), "you [KEYWORD_REDACTED]");
        assert_eq!(run(&f, "you bstard").unwrap(), "you bstard");
        // Unknown categories are skipped; LiteLLM's bundled ones must be supplied.
        let skipped =
            build(json!({"categories": [{"category": "nothing_here", "action": "BLOCK"}]}));
        assert_eq!(run(&skipped, "murder").unwrap(), "murder");
        let err =
            load_err(json!({"categories": [{"category": "harmful_self_harm", "action": "BLOCK"}]}));
        assert!(err.contains("harmful_self_harm.yaml"), "{err}");
        let err = load_err(json!({"categories": [{"category": "x", "action": "BLOCK",
            "category_file": "policy_templates/prompt_injection.yaml"}]}));
        assert!(err.contains("prompt_injection.yaml"), "{err}");
    }

    #[test]
    fn blocked_words_file_overrides_inline_entries() {
        let data = categories();
        let f = build_with(
            json!({"blocked_words": [{"keyword": "zeta", "action": "MASK"}], "blocked_words_file": "blocked.yaml"}),
            &data,
        );
        assert_eq!(
            run(&f, "ZETA").unwrap_err(),
            "{'error': \"Content blocked: keyword 'zeta' detected (from file)\", 'keyword': 'zeta', 'description': 'from file'}"
        );
        assert_eq!(
            load_err(json!({"blocked_words_file": "missing.yaml"})),
            "Blocked words file not found: missing.yaml"
        );
    }

    #[test]
    fn detail_is_pythons_str_of_the_dict() {
        let f = build(json!({"blocked_words": [
            {"keyword": "it's", "action": "BLOCK", "description": "say \"hi\"\n\u{200b}"},
            {"keyword": "c:\\x", "action": "BLOCK"},
        ]}));
        assert_eq!(
            run(&f, "it's").unwrap_err(),
            "{'error': 'Content blocked: keyword \\'it\\'s\\' detected (say \"hi\"\\n\\u200b)', 'keyword': \"it's\", 'description': 'say \"hi\"\\n\\u200b'}"
        );
        assert_eq!(
            run(&f, "C:\\X").unwrap_err(),
            "{'error': \"Content blocked: keyword 'c:\\\\x' detected\", 'keyword': 'c:\\\\x', 'description': None}"
        );
        assert_eq!(py_repr_str("é😀\u{7f}\u{85}"), "'é😀\\x7f\\x85'");
    }

    #[test]
    fn python_regex_semantics() {
        let re = |p: &str, i: bool| PyRegex::new(p, i).unwrap();
        // IGNORECASE equivalences beyond simple case folding, and Unicode classes.
        assert!(re("i", true).search("ı"));
        assert!(re("[a-z]", true).search("İ"));
        assert!(re("s", true).search("ſ"));
        assert!(re("k", true).search("\u{212a}"));
        assert!(!re("(?-i:AIza)", true).search("aiza"));
        assert!(re(r"\d", false).search("٣"));
        assert!(!re(r"\s", false).search("\u{200b}"));
        assert!(re(r"\s", false).search("\u{1c}"));
        // Python's \b: a combining mark is not a word character; `²` is.
        assert_eq!(re(r"e\b", false).find_iter("cafe\u{301}"), vec![(3, 4)]);
        assert_eq!(
            re(r"\b2\b", false).find_iter("2²"),
            Vec::<(usize, usize)>::new()
        );
        // `$` also matches before a final newline; lookarounds.
        assert_eq!(re("a$", false).find_iter("a\n"), vec![(0, 1)]);
        assert_eq!(
            re(r"(?<=id:)\d+", false).find_iter("id:42 x:7"),
            vec![(3, 5)]
        );
        assert_eq!(
            re(r"\d(?!\d)", false).find_iter("12 3"),
            vec![(1, 2), (3, 4)]
        );
        // Empty matches follow Python's finditer / sub rules.
        assert_eq!(
            re("x*", false).find_iter("axb"),
            vec![(0, 0), (1, 2), (2, 2), (3, 3)]
        );
        assert_eq!(re("x*", false).sub("axb", "-"), "-a--b-");
        assert!(re(r"\b[0-9]{9}\b", true).fullmatch("123456789"));
        assert!(!re(r"\b[0-9]{9}\b", true).fullmatch("1234567890"));
    }

    #[test]
    fn deep_group_nesting_is_unsupported_not_a_stack_overflow() {
        let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        // 100 levels parse, compile and match on an async worker thread's stack (2 MiB), even in a
        // debug build (about 1 MiB there).
        let ok = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let r = PyRegex::new(&deep(100), false).map_err(|e| format!("{e:?}"))?;
                let nc = format!("{}a|b{}", "(?:".repeat(100), ")".repeat(100));
                let nc = PyRegex::new(&nc, false).map_err(|e| format!("{e:?}"))?;
                Ok::<bool, String>(r.fullmatch("a") && nc.fullmatch("b") && !nc.fullmatch("c"))
            })
            .map(|t| t.join());
        assert!(matches!(ok, Ok(Ok(Ok(true)))), "{ok:?}");
        for p in [
            deep(101),
            deep(100_000),
            "(".repeat(100_000),
            "(?:".repeat(50_000),
        ] {
            match PyRegex::new(&p, true) {
                Err(ReError::Unsupported(why)) => assert!(why.contains("nested"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn regex_errors_and_unsupported_constructs() {
        for bad in [
            "(",
            "[a-",
            "a**",
            "*a",
            r"(?<=a+)b",
            r"\q",
            "a{3,1}",
            "x(?i)",
        ] {
            assert!(
                matches!(PyRegex::new(bad, true), Err(ReError::Invalid(_))),
                "{bad}"
            );
        }
        for unsupported in [
            r"(a)\1",
            "(?>a)",
            "a*+",
            "(?x)a",
            "(?a)a",
            "(a*)*",
            r"\N{DASH}",
        ] {
            assert!(
                matches!(
                    PyRegex::new(unsupported, true),
                    Err(ReError::Unsupported(_))
                ),
                "{unsupported}"
            );
        }
        assert!(
            load_err(json!({"patterns": [prebuilt_rule("nope", "BLOCK")]}))
                .starts_with("Unknown pattern name: 'nope'. Available patterns: us_ssn, ")
        );
        assert!(load_err(json!({"patterns": [prebuilt_rule("email", "mask")]})).contains("action"));
        assert!(
            load_err(json!({"patterns": [{"pattern_type": "prebuilt", "pattern_name": "email"}]}))
                .contains("action")
        );
        assert!(
            load_err(json!({"patterns": [regex_rule("(", None, "BLOCK")]}))
                .contains("invalid regex")
        );
        assert!(
            load_err(json!({"patterns": [regex_rule(r"(a)\1", None, "BLOCK")]}))
                .contains("backreference")
        );
        assert_eq!(
            load_err(json!({"mode": "bogus"})),
            "'bogus' is not a valid GuardrailEventHooks"
        );
        assert!(
            load_err(json!({"competitor_intent_config": {"competitors": ["x"]}}))
                .contains("competitor")
        );
    }

    fn request(messages: &[(&str, &str)], response: Option<&str>) -> Request {
        Request {
            model: Some("gpt-4o".into()),
            messages: messages
                .iter()
                .map(|(r, c)| Message {
                    role: (*r).into(),
                    content: (*c).into(),
                })
                .collect(),
            response: response.map(Into::into),
        }
    }

    #[test]
    fn pre_call_masks_every_message_in_place_and_blocks_before_writing() {
        let f = build(json!({
            "patterns": [prebuilt_rule("email", "MASK")],
            "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
        }));
        let req = request(
            &[
                ("system", "sys@corp.com"),
                ("user", "u@corp.com"),
                ("tool", ""),
            ],
            None,
        );
        match f.check(PipelineMode::PreCall, &req) {
            Verdict::Pass(Rewrite::InPlace(r)) => {
                assert_eq!(r.messages[0].content, "[EMAIL_REDACTED]");
                assert_eq!(r.messages[1].content, "[EMAIL_REDACTED]");
            }
            v => panic!("{v:?}"),
        }
        let blocked = request(&[("user", "a@b.io"), ("user", "forbidden")], None);
        assert!(matches!(
            f.check(PipelineMode::PreCall, &blocked),
            Verdict::Fail(_)
        ));
        let clean = request(&[("user", "hello")], None);
        assert_eq!(
            f.check(PipelineMode::PreCall, &clean),
            Verdict::Pass(Rewrite::None)
        );
        let skip_system = build(json!({
            "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
            "skip_system_message_in_guardrail": true,
        }));
        let sys = request(&[("System", "forbidden"), ("user", "hi")], None);
        assert_eq!(
            skip_system.check(PipelineMode::PreCall, &sys),
            Verdict::Pass(Rewrite::None)
        );
        let tools_only = build(json!({
            "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
            "scan_only_tool_results": true,
        }));
        assert_eq!(
            tools_only.check(PipelineMode::PreCall, &sys),
            Verdict::Pass(Rewrite::None)
        );
    }

    #[test]
    fn modes_gate_and_post_call_scans_the_response() {
        let post = build(json!({
            "mode": "post_call",
            "patterns": [prebuilt_rule("email", "MASK")],
            "blocked_words": [{"keyword": "forbidden", "action": "BLOCK"}],
        }));
        let req = request(&[("user", "forbidden a@b.io")], Some("reach me at r@s.tv"));
        assert_eq!(
            post.check(PipelineMode::PreCall, &req),
            Verdict::Pass(Rewrite::None),
            "a post_call guardrail in a pre_call pipeline does nothing"
        );
        match post.check(PipelineMode::PostCall, &req) {
            Verdict::Pass(Rewrite::InPlace(r)) => {
                assert_eq!(r.response.as_deref(), Some("reach me at [EMAIL_REDACTED]"));
                assert_eq!(
                    r.messages, req.messages,
                    "post_call leaves the request alone"
                );
            }
            v => panic!("{v:?}"),
        }
        let empty = request(&[("user", "x")], Some(""));
        assert_eq!(
            post.check(PipelineMode::PostCall, &empty),
            Verdict::Pass(Rewrite::None)
        );
        for mode in [json!(""), json!([])] {
            let f = build(json!({"mode": mode}));
            assert_eq!(f.hooks(), ["pre_call"], "an empty mode means pre_call");
        }
        let both = build(json!({"mode": ["pre_call", "post_call"]}));
        assert!(both.runs_on("pre_call") && both.runs_on("post_call"));
        let streaming = build(json!({"stream_scope": "streaming"}));
        assert_eq!(streaming.check(PipelineMode::PreCall, &req), Verdict::Skip);
        let bogus_scope = build(json!({"stream_scope": "sometimes"}));
        assert_eq!(
            bogus_scope.check(PipelineMode::PreCall, &req),
            Verdict::Pass(Rewrite::None)
        );
    }

    #[test]
    fn guardrails_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ContentFilter>();
        assert_send_sync::<CatalogGuardrails>();
        assert_send_sync::<CategoryData>();
    }

    #[test]
    fn catalog_guardrails_build_content_filters_only() {
        let catalog = Catalog::from_value(&json!([
            {"guardrail_name": "pii", "litellm_params": {"guardrail": "litellm_content_filter",
                "mode": "post_call", "patterns": [{"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"}]}},
            {"guardrail_name": "broken", "litellm_params": {"guardrail": "litellm_content_filter",
                "mode": "pre_call", "patterns": [{"pattern_type": "regex", "pattern": "(", "action": "BLOCK"}]}},
            {"guardrail_name": "presidio", "litellm_params": {"guardrail": "presidio", "mode": "pre_call"}},
        ]))
        .unwrap();
        let g = CatalogGuardrails::new(&catalog, &CategoryData::new());
        assert!(g.real("pii").is_some());
        assert_eq!(g.mode("pii"), PipelineMode::PostCall);
        assert!(g.real("presidio").is_none());
        assert_eq!(g.mode("presidio"), PipelineMode::PreCall);
        assert_eq!(g.errors().len(), 1);
        let broken = g.real("broken").unwrap();
        assert!(matches!(
            broken.check(PipelineMode::PreCall, &Request::default()),
            Verdict::Error(m) if m.contains("invalid regex")
        ));
        assert!(g.real("missing").is_none());
    }
}
