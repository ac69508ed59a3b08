//! Requests: text extraction, mode and stream-scope gating, verdicts; the catalog's guardrail
//! provider.

use std::collections::HashMap;

use serde_json::Value;

use super::*;
use crate::engine::catalog::Catalog;
use crate::engine::model::PipelineMode;
use crate::engine::pipeline::{Guardrail, Request, Rewrite, Verdict};
use crate::engine::testing::GuardrailProvider;

// ─────────────────────────────────────────────────────────────────────────────
// Requests: extraction, gating, verdicts
// ─────────────────────────────────────────────────────────────────────────────

impl ContentFilter {
    /// `role_out_of_guardrail_scope`.
    pub(crate) fn role_out_of_scope(&self, role: &str) -> bool {
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
pub(crate) struct Unbuildable {
    pub(crate) name: String,
    pub(crate) error: String,
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
pub(crate) enum Built {
    Filter(Box<ContentFilter>),
    Unbuildable(Unbuildable),
}

/// The guardrail catalog's content filters, built once per catalog: they run for real in
/// tests; every other guardrail needs a mock.
#[derive(Debug, Default)]
pub struct CatalogGuardrails {
    pub(crate) built: HashMap<String, Built>,
    pub(crate) modes: HashMap<String, PipelineMode>,
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
