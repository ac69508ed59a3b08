//! The Argo CD health checks of `examples/gitops/argocd-cm-health.yaml`, run with a real Lua
//! interpreter (mlua, Lua 5.4) the way Argo CD runs them: the object becomes the global `obj`
//! (maps to tables, lists to 1-based tables, null to nil), the script's chunk returns the
//! `hs` table, and only the base, table, string and math libraries are open.
//!
//! Shared by `tests/gitops.rs` (fixtures) and `tests/integration/gitops.rs` (live objects).

#![allow(dead_code)] // each test target uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib, Table};
use serde_json::Value;

/// Our kinds; each has a `resource.customizations.health.guardrails.dev_<Kind>` entry.
pub const KINDS: [&str; 3] = ["Policy", "PolicyVersion", "PolicyAttachment"];

/// The argocd-cm key prefix for our group.
pub const KEY_PREFIX: &str = "resource.customizations.health.guardrails.dev_";

/// The health statuses Argo CD accepts from a Lua check.
pub const ARGO_STATUSES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `resource.customizations.health.guardrails.dev_<Kind>` script in the shipped
/// argocd-cm snippet, by kind (YAML anchors resolved, as kubectl and Argo CD see them).
pub fn health_scripts() -> BTreeMap<String, String> {
    let path = repo_root().join("examples/gitops/argocd-cm-health.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let cm: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(cm["kind"], "ConfigMap", "{} is a ConfigMap", path.display());
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let data = cm["data"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no data map", path.display()));
    data.iter()
        .filter_map(|(k, v)| {
            let kind = k.strip_prefix(KEY_PREFIX)?;
            let script = v
                .as_str()
                .unwrap_or_else(|| panic!("{k} is not a string"))
                .to_string();
            Some((kind.to_string(), script))
        })
        .collect()
}

/// What a health check returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub status: String,
    pub message: String,
}

/// Runs one health script on one object (JSON, as the API server returns it).
pub fn health(script: &str, obj: &Value) -> Health {
    run(script, obj).unwrap_or_else(|e| panic!("health check failed on {obj}: {e}"))
}

fn run(script: &str, obj: &Value) -> mlua::Result<Health> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    let opts = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false);
    let table = lua.to_value_with(obj, opts)?;
    lua.globals().set("obj", table)?;
    let hs: Table = lua.load(script).set_name("health.lua").eval()?;
    let status: String = hs.get("status")?;
    let message: Option<String> = hs.get("message")?;
    assert!(
        ARGO_STATUSES.contains(&status.as_str()),
        "status {status:?} is not an Argo CD health status"
    );
    Ok(Health {
        status,
        message: message.unwrap_or_default(),
    })
}

/// The health of an object, with the script registered for its kind.
pub fn health_of(scripts: &BTreeMap<String, String>, obj: &Value) -> Health {
    let kind = obj["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("object without kind: {obj}"));
    let script = scripts
        .get(kind)
        .unwrap_or_else(|| panic!("no {KEY_PREFIX}{kind} entry in argocd-cm-health.yaml"));
    health(script, obj)
}
