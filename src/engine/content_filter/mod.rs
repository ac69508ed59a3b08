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
//! Regexes follow Python's `re` exactly: they run on [`crate::engine::pyre`], the engine's one
//! Python-`re` implementation (model conditions use it too).
//!
//! Not reproduced (rejected at load): `competitor_intent_config`, tag-map modes (enterprise),
//! `scan_raw_request`, non-string keyword severities and blocked-word descriptions. Requests
//! here carry plain-string contents, so images, list contents and tool calls never occur.
//! Category and blocked-words files are parsed as YAML 1.2 (`serde-saphyr`), where PyYAML
//! reads YAML 1.1: an unquoted `yes`/`no`/`on`/`off` keyword is a string here and a boolean
//! (a load error) in LiteLLM. The global `litellm_settings` (`skip_system_message_in_guardrail`
//! and friends) are taken at their defaults; the per-guardrail flags are honoured.

//!
//! Layout: [`config`] (parameters), [`categories`] (category files), [`text`] (the per-text
//! algorithm), [`request`] (extraction, gating, the catalog's provider), [`prebuilt`] (data).

mod categories;
mod config;
mod prebuilt;
mod request;
#[cfg(test)]
mod tests;
mod text;

pub use categories::CategoryData;
pub use config::{Blocked, ContentFilter, FilterError};
pub use prebuilt::{PREBUILT, Prebuilt};
pub use request::CatalogGuardrails;

use config::*;
use prebuilt::*;

/// The `litellm_params.guardrail` value this module implements.
pub const KIND: &str = "litellm_content_filter";

const KEYWORD_TAG: &str = "[KEYWORD_REDACTED]";
