//! Category files (supplied as data: the project ships no category lists) and their loading:
//! YAML and JSON category files, keywords, exceptions, conditional categories.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::engine::pyre::*;

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
    pub(crate) files: BTreeMap<String, Option<Value>>,
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

    pub(crate) fn get(&self, name: &str) -> Option<&Option<Value>> {
        self.files.get(name)
    }
}

/// Bundled LiteLLM category files (names only): a category that names one of these must have
/// its file supplied, because LiteLLM would load its own copy rather than skip it.
pub(crate) const BUNDLED_CATEGORIES: &[&str] = &[
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

pub(crate) const BUNDLED_TEMPLATES: &[&str] = &[
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
pub(crate) enum FileLookup<'a> {
    Found(&'a str, &'a Option<Value>),
    /// LiteLLM would load its bundled copy; the caller did not supply it.
    BundledMissing(String),
    /// LiteLLM would not find it either (the category is skipped with a warning).
    Absent,
}

impl CategoryData {
    /// `find_category_file`: `<name>.yaml`, then `<name>.json`, in the categories folder.
    pub(crate) fn find_category(&self, name: &str) -> FileLookup<'_> {
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
    pub(crate) fn find_category_file(&self, path: &str) -> FileLookup<'_> {
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

impl ContentFilter {
    /// `_load_categories` for one entry.
    pub(crate) fn load_category(
        &mut self,
        cfg: &CategoryConfig,
        files: &CategoryData,
    ) -> Result<(), String> {
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
    pub(crate) fn conditional_block_words(
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

pub(crate) fn bundled_missing(name: &str, file: &str) -> String {
    format!(
        "category '{name}' uses LiteLLM's bundled category file {file}; add that file (from the litellm package) to the guardrail catalog's category data"
    )
}

pub(crate) fn non_string_severity(name: &str, v: &Value) -> String {
    format!("category {name}: non-string keyword severity {v} is not supported")
}

impl CategoryKeyword {
    pub(crate) fn new(keyword: &str, category: &str, severity: &str, action: Action) -> Self {
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
pub(crate) fn load_category_file(
    file_name: &str,
    data: Option<&Value>,
) -> Result<LoadedCategory, LoadError> {
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
pub(crate) fn load_json_category(data: &Value) -> Result<LoadedCategory, LoadError> {
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
