//! The guardrails that run for real in test pipelines, built from a namespace's catalog.
//!
//! One factory for the three front ends: the controller (test results in status), the
//! webhook (the admission test step) and the CLI (`guardrail-operator test`).

use std::sync::Arc;

use crate::engine::catalog::Catalog;
use crate::engine::testing::{GuardrailProvider, MocksOnly};

/// Builds the guardrails that run for real in tests from a namespace's catalog.
pub type ProviderFactory =
    Arc<dyn Fn(Option<&Catalog>) -> Arc<dyn GuardrailProvider + Send + Sync> + Send + Sync>;

/// The default factory: `litellm_content_filter` entries run for real,
/// everything else needs a mock. Built guardrails are cached by catalog content, so the
/// admission hot path compiles nothing.
pub fn default_provider() -> ProviderFactory {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Built = Arc<dyn GuardrailProvider + Send + Sync>;
    let cache: Arc<Mutex<HashMap<String, Built>>> = Arc::default();
    Arc::new(move |catalog: Option<&Catalog>| -> Built {
        let Some(catalog) = catalog else {
            return Arc::new(MocksOnly);
        };
        let key = format!(
            "{:?}",
            (
                catalog.entries.iter().map(|e| &e.raw).collect::<Vec<_>>(),
                &catalog.files
            )
        );
        if let Ok(c) = cache.lock()
            && let Some(p) = c.get(&key)
        {
            return p.clone();
        }
        let data = crate::engine::content_filter::CategoryData::from_texts(
            catalog.files.iter().map(|(k, v)| (k.clone(), v.clone())),
        );
        let built: Built = Arc::new(crate::engine::content_filter::CatalogGuardrails::new(
            catalog, &data,
        ));
        if let Ok(mut c) = cache.lock() {
            if c.len() >= 32 {
                c.clear();
            }
            c.insert(key, built.clone());
        }
        built
    })
}

/// A factory where every guardrail needs a mock.
pub fn mocks_only() -> ProviderFactory {
    Arc::new(|_| Arc::new(MocksOnly))
}
