//! `plan` (api.md §8): compare a base state (`--base`, `--base-ref`, `--live`) with the -f
//! files and print what changes at the gateway, for people (text, markdown) or machines
//! (JSON). Exit code: 1 on an error or a refusal; with `--detailed-exitcode`, 2 when something
//! changes, else 0.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Failure, PlanArgs, PlanOutput};
use crate::engine::catalog::Catalog;
use crate::engine::namespace::{Evaluation, Objects};
use crate::engine::plan::{self, Limits, Plan, State};

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, Failure> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| fail(format!("--base-ref: cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "--base-ref: git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// The -f paths as they are at git revision `rev`, written under a temporary directory:
/// the returned paths stand for the given ones (a path absent at `rev` is left out).
fn paths_at_ref(rev: &str, paths: &[String]) -> Result<(TempDir, Vec<String>), Failure> {
    let cwd = std::env::current_dir().map_err(|e| fail(format!("--base-ref: {e}")))?;
    let tmp = TempDir(std::env::temp_dir().join(format!(
        "guardrail-plan-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )));
    let mut mapped = Vec::new();
    for p in paths {
        if p == "-" {
            return Err(Failure::usage(
                "--base-ref reads the -f paths from git; stdin (-f -) has no revision",
            ));
        }
        let abs = cwd.join(p);
        // The repository: from the path's nearest existing directory.
        let mut dir = abs.clone();
        while !dir.is_dir() {
            if !dir.pop() {
                break;
            }
        }
        let top = PathBuf::from(
            String::from_utf8_lossy(&git(&dir, &["rev-parse", "--show-toplevel"])?)
                .trim()
                .to_string(),
        );
        let top_canon = top.canonicalize().unwrap_or(top.clone());
        let dir_canon = dir.canonicalize().unwrap_or(dir.clone());
        let tail = abs.strip_prefix(&dir).unwrap_or(Path::new(""));
        let rel = dir_canon
            .strip_prefix(&top_canon)
            .map_err(|_| {
                fail(format!(
                    "--base-ref: {p} is not inside the git repository {}",
                    top.display()
                ))
            })?
            .join(tail);
        let commit = format!("{rev}^{{commit}}");
        git(&top, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| {
            fail(format!(
                "--base-ref: {rev} is not a revision of {}",
                top.display()
            ))
        })?;
        let rel_s = rel.to_string_lossy().to_string();
        let list = git(
            &top,
            &[
                "ls-tree",
                "-r",
                "-z",
                "--name-only",
                rev,
                "--",
                if rel_s.is_empty() { "." } else { &rel_s },
            ],
        )?;
        let files: Vec<String> = list
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).to_string())
            .collect();
        if files.is_empty() {
            continue;
        }
        for f in &files {
            let body = git(&top, &["show", &format!("{rev}:{f}")])?;
            let dest = tmp.0.join(f);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| fail(format!("--base-ref: {}: {e}", parent.display())))?;
            }
            std::fs::write(&dest, body)
                .map_err(|e| fail(format!("--base-ref: {}: {e}", dest.display())))?;
        }
        mapped.push(tmp.0.join(&rel).to_string_lossy().to_string());
    }
    Ok((tmp, mapped))
}

fn evaluate(objects: &Objects, catalog: Option<&Catalog>) -> Evaluation {
    super::render::evaluate_objects(objects, catalog)
}

fn read_objects(files: &[String], recursive: bool, ns: &str) -> Result<Objects, Failure> {
    if files.is_empty() {
        return Ok(Objects::default());
    }
    let m = super::manifests::read(files, recursive).map_err(|e| fail(e.to_string()))?;
    Ok(m.objects(ns))
}

/// Both states and the plan.
pub fn compute(args: &PlanArgs) -> Result<Plan, Failure> {
    let chosen = [
        !args.base.is_empty(),
        args.base_ref.is_some(),
        args.live.live,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(fail(
            "plan needs exactly one base: --base PATH (files or folders), --base-ref REV (the -f paths at a git revision) or --live (the cluster's namespace)",
        ));
    }
    let catalog = super::read_catalog(args.inputs.catalog.as_deref()).map_err(|mut e| {
        e.code = 1;
        e
    })?;
    // Both states' files are read side by side when both are files.
    let (m, mut base_read) = std::thread::scope(|scope| {
        let base = (!args.base.is_empty())
            .then(|| scope.spawn(|| super::manifests::read(&args.base, args.inputs.recursive)));
        let new = super::manifests::read(&args.inputs.files, args.inputs.recursive);
        (new, base.map(|h| h.join()))
    });
    let m = m.map_err(|e| fail(e.to_string()))?;
    let ns = m
        .choose_namespace(args.inputs.namespace.as_deref())
        .map_err(fail)?;
    let new_objects = m.objects(&ns);

    let _tmp;
    let (base_objects, base_catalog) = if args.live.live {
        let cluster = super::live::ClusterArgs {
            namespace: Some(ns.clone()),
            kubeconfig: args.live.kubeconfig.clone(),
            context: args.live.context.clone(),
        };
        let o = super::block_on(async move {
            let (client, ns) = super::live::connect(&cluster).await?;
            super::live::objects(&client, &ns).await
        })?;
        (o, catalog.clone())
    } else if let Some(rev) = &args.base_ref {
        let (tmp, paths) = paths_at_ref(rev, &args.inputs.files)?;
        let o = read_objects(&paths, args.inputs.recursive, &ns)?;
        // The catalog as it was at the revision too, when it is in the repository.
        let cat = match &args.inputs.catalog {
            Some(c) => match paths_at_ref(rev, std::slice::from_ref(c)) {
                Ok((t2, p)) if !p.is_empty() => {
                    let c = super::read_catalog(p.first().map(String::as_str))?;
                    drop(t2);
                    c
                }
                _ => catalog.clone(),
            },
            None => None,
        };
        _tmp = tmp;
        (o, cat)
    } else {
        let base = match base_read.take() {
            Some(Ok(read)) => read.map_err(|e| fail(e.to_string()))?.objects(&ns),
            _ => read_objects(&args.base, args.inputs.recursive, &ns)?,
        };
        (base, catalog.clone())
    };

    let contexts = match &args.contexts {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(format!("--contexts {path}: cannot read: {e}")))?;
            Some(plan::traffic::parse(&text).map_err(|e| fail(format!("--contexts {path}: {e}")))?)
        }
    };
    let messages = match &args.messages {
        None => None,
        Some(path) => {
            if contexts.is_none() {
                return Err(fail(
                    "--messages needs --contexts: it runs the messages on the changed requests",
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(format!("--messages {path}: cannot read: {e}")))?;
            Some(
                plan::traffic::parse_messages(&text)
                    .map_err(|e| fail(format!("--messages {path}: {e}")))?,
            )
        }
    };
    let base_provider = super::test::provider(base_catalog.as_ref());
    let new_provider = super::test::provider(catalog.as_ref());
    let message_input = messages.as_ref().map(|texts| plan::Messages {
        texts,
        base: base_provider.as_ref(),
        new: new_provider.as_ref(),
    });
    let (base_eval, new_eval) = std::thread::scope(|scope| {
        let base = scope.spawn(|| evaluate(&base_objects, base_catalog.as_ref()));
        let new = evaluate(&new_objects, catalog.as_ref());
        (base.join(), new)
    });
    let base_eval = base_eval.map_err(|_| fail("plan: evaluating the base state failed"))?;
    plan::plan(
        &ns,
        State {
            objects: &base_objects,
            eval: &base_eval,
        },
        State {
            objects: &new_objects,
            eval: &new_eval,
        },
        contexts.as_deref(),
        message_input.as_ref(),
        Limits::default(),
    )
    .map_err(|e| fail(format!("plan: {e}")))
}

/// `plan`.
pub fn run(args: &PlanArgs) -> Result<i32, Failure> {
    let p = compute(args).map_err(|mut e| {
        e.code = 1;
        e
    })?;
    let color = args.output == PlanOutput::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    match args.output {
        PlanOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&p).map_err(|e| fail(e.to_string()))?
        ),
        PlanOutput::Text => print!("{}", text(&p, color)),
        PlanOutput::Markdown => print!("{}", markdown(&p)),
    }
    if !p.refusals.is_empty() {
        return Ok(1);
    }
    Ok(if args.detailed_exitcode && p.changes() {
        2
    } else {
        0
    })
}

fn request_text(r: &plan::Request) -> String {
    let v = |x: &Option<String>| {
        x.as_ref()
            .map(|s| format!("{s:?}"))
            .unwrap_or("null".into())
    };
    format!(
        "team={} key={} model={} tags={}",
        v(&r.team),
        v(&r.key),
        v(&r.model),
        r.tags
            .as_ref()
            .map(|t| format!("{t:?}"))
            .unwrap_or("null".into())
    )
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

fn headline(p: &Plan) -> String {
    let prod = &p.production;
    let n = prod.entering.len() + prod.leaving.len() + prod.replacing.len();
    let mut s = format!(
        "{n} production change{}, {} class{} of requests change{}",
        if n == 1 { "" } else { "s" },
        p.requests.changed.len() + p.requests.unwitnessed.len(),
        if p.requests.changed.len() + p.requests.unwitnessed.len() == 1 {
            ""
        } else {
            "es"
        },
        if p.requests.changed.len() + p.requests.unwitnessed.len() == 1 {
            "s"
        } else {
            ""
        },
    );
    if let Some(t) = &p.traffic {
        s.push_str(&format!(
            ", {} of {} requests ({})",
            t.changed,
            t.requests,
            percent(t.changed, t.requests)
        ));
    }
    if !p.refusals.is_empty() {
        s.push_str(&format!(", {} refused", p.refusals.len()));
    }
    s
}

fn percent(a: u64, b: u64) -> String {
    if b == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", a as f64 * 100.0 / b as f64)
    }
}

/// Text for a terminal: the most important change first.
pub fn text(p: &Plan, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let (green, red, yellow, bold) = ("32", "31", "33", "1");
    let mut o = String::new();
    o.push_str(&paint(
        bold,
        &format!("Plan for namespace {}: {}\n", p.namespace, headline(p)),
    ));
    for r in &p.refusals {
        o.push_str(&paint(
            red,
            &format!("  refused: {} {}: {}\n", r.object, r.field, r.message),
        ));
    }
    let prod = &p.production;
    if !(prod.entering.is_empty()
        && prod.leaving.is_empty()
        && prod.replacing.is_empty()
        && prod.waiting.is_empty()
        && prod.newly_failing_tests.is_empty())
    {
        o.push_str("\nProduction:\n");
        for e in &prod.leaving {
            o.push_str(&paint(
                red,
                &format!("  - {} v{} leaves production\n", e.policy, e.version),
            ));
        }
        for e in &prod.entering {
            o.push_str(&paint(
                green,
                &format!("  + {} v{} enters production\n", e.policy, e.version),
            ));
        }
        for r in &prod.replacing {
            o.push_str(&paint(
                yellow,
                &format!(
                    "  ~ {} v{} -> v{} ({}{})\n",
                    r.policy,
                    r.from,
                    r.to,
                    if r.to < r.from { "rollback; " } else { "" },
                    if r.fields.is_empty() {
                        "same content".to_string()
                    } else {
                        r.fields.join(", ")
                    }
                ),
            ));
        }
        for w in &prod.waiting {
            o.push_str(&format!(
                "  . {} v{} waits: {}\n",
                w.policy, w.version, w.reason
            ));
        }
        for t in &prod.newly_failing_tests {
            o.push_str(&paint(
                red,
                &format!(
                    "  ! test '{}' of {} v{} now fails: {}\n",
                    t.test, t.policy, t.version, t.message
                ),
            ));
        }
    }
    if !p.requests.changed.is_empty() || !p.requests.unwitnessed.is_empty() {
        o.push_str(&format!(
            "\nRequests ({} changed, {} unchanged):\n",
            p.requests.changed.len() + p.requests.unwitnessed.len(),
            p.requests.unchanged
        ));
        for c in &p.requests.changed {
            o.push_str(&format!("  {}\n", paint(bold, &c.description)));
            if !c.added.is_empty() {
                o.push_str(&paint(green, &format!("    + {}\n", c.added.join(", "))));
            }
            if !c.removed.is_empty() {
                o.push_str(&paint(red, &format!("    - {}\n", c.removed.join(", "))));
            }
            o.push_str(&format!("    example: {}\n", request_text(&c.example)));
            o.push_str(&format!(
                "      guardrails: {} -> {}\n",
                list(&c.before),
                list(&c.after)
            ));
            o.push_str(&format!(
                "      policies:   {} -> {}\n",
                list(&c.policies_before),
                list(&c.policies_after)
            ));
        }
        for c in &p.requests.unwitnessed {
            o.push_str(&format!(
                "  {} (no example request could be constructed exactly)\n    + {}\n    - {}\n",
                paint(bold, &c.description),
                list(&c.added),
                list(&c.removed)
            ));
        }
    } else {
        o.push_str(&format!(
            "\nRequests: no class of requests changes ({} unchanged)\n",
            p.requests.unchanged
        ));
    }
    if let Some(t) = &p.traffic {
        o.push_str(&format!(
            "\nTraffic: {} of {} requests change ({})\n",
            t.changed,
            t.requests,
            percent(t.changed, t.requests)
        ));
        if let Some(m) = &t.messages {
            o.push_str(&format!(
                "  with {} sample messages: about {} of them would now be blocked, {} masked, {} no longer blocked{}\n",
                m.samples,
                m.blocked,
                m.masked,
                m.unblocked,
                if m.not_run.is_empty() {
                    String::new()
                } else {
                    format!(" (not run offline: {})", m.not_run.join(", "))
                }
            ));
        }
        for g in &t.guardrails {
            if g.gained > 0 {
                o.push_str(&paint(
                    green,
                    &format!("  + {:<32} {} requests gain it\n", g.guardrail, g.gained),
                ));
            }
            if g.lost > 0 {
                o.push_str(&paint(
                    red,
                    &format!("  - {:<32} {} requests lose it\n", g.guardrail, g.lost),
                ));
            }
        }
    }
    o
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_list(v: &[String]) -> String {
    if v.is_empty() {
        "—".into()
    } else {
        v.iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Markdown for a pull-request comment: summary, production table, the first request
/// classes and the rest collapsed.
pub fn markdown(p: &Plan) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "### Guardrail plan for `{}`\n\n**{}**\n\n",
        p.namespace,
        headline(p)
    ));
    if !p.refusals.is_empty() {
        o.push_str("#### :no_entry: Refused\n\n| Object | Field | Why |\n|---|---|---|\n");
        for r in &p.refusals {
            o.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                r.object,
                r.field,
                md_escape(&r.message)
            ));
        }
        o.push('\n');
    }
    let prod = &p.production;
    let rows: Vec<String> = prod
        .leaving
        .iter()
        .map(|e| format!("| leaves | `{}` | v{} | |", e.policy, e.version))
        .chain(
            prod.entering
                .iter()
                .map(|e| format!("| enters | `{}` | v{} | |", e.policy, e.version)),
        )
        .chain(prod.replacing.iter().map(|r| {
            format!(
                "| {} | `{}` | v{} → v{} | {} |",
                if r.to < r.from {
                    "rolled back"
                } else {
                    "replaced"
                },
                r.policy,
                r.from,
                r.to,
                r.fields.join(", ")
            )
        }))
        .chain(prod.waiting.iter().map(|w| {
            format!(
                "| waits | `{}` | v{} | {} |",
                w.policy,
                w.version,
                md_escape(&w.reason)
            )
        }))
        .chain(prod.newly_failing_tests.iter().map(|t| {
            format!(
                "| test fails | `{}` | v{} | `{}`: {} |",
                t.policy,
                t.version,
                t.test,
                md_escape(&t.message)
            )
        }))
        .collect();
    if !rows.is_empty() {
        o.push_str("#### Production\n\n| | Policy | Version | Detail |\n|---|---|---|---|\n");
        for r in rows {
            o.push_str(&r);
            o.push('\n');
        }
        o.push('\n');
    }
    let classes = &p.requests.changed;
    if !classes.is_empty() || !p.requests.unwitnessed.is_empty() {
        o.push_str(&format!(
            "#### Requests\n\n{} class{} of requests change{}, {} do{} not.\n\n",
            classes.len() + p.requests.unwitnessed.len(),
            if classes.len() + p.requests.unwitnessed.len() == 1 {
                ""
            } else {
                "es"
            },
            if classes.len() + p.requests.unwitnessed.len() == 1 {
                "s"
            } else {
                ""
            },
            p.requests.unchanged,
            if p.requests.unchanged == 1 { "es" } else { "" }
        ));
        let header = "| Requests | Added | Removed | Example |\n|---|---|---|---|\n";
        let row = |c: &plan::Changed| {
            format!(
                "| {} | {} | {} | `{}` |\n",
                md_escape(&c.description),
                md_list(&c.added),
                md_list(&c.removed),
                md_escape(&request_text(&c.example))
            )
        };
        const SHOWN: usize = 10;
        o.push_str(header);
        for c in classes.iter().take(SHOWN) {
            o.push_str(&row(c));
        }
        if classes.len() > SHOWN {
            o.push_str(&format!(
                "\n<details><summary>{} more classes</summary>\n\n{header}",
                classes.len() - SHOWN
            ));
            for c in classes.iter().skip(SHOWN) {
                o.push_str(&row(c));
            }
            o.push_str("\n</details>\n");
        }
        if !p.requests.unwitnessed.is_empty() {
            o.push_str("\n<details><summary>Classes without an exact example request</summary>\n\n| Requests | Added | Removed |\n|---|---|---|\n");
            for c in &p.requests.unwitnessed {
                o.push_str(&format!(
                    "| {} | {} | {} |\n",
                    md_escape(&c.description),
                    md_list(&c.added),
                    md_list(&c.removed)
                ));
            }
            o.push_str("\n</details>\n");
        }
        o.push('\n');
    }
    if let Some(t) = &p.traffic {
        o.push_str(&format!(
            "#### Traffic\n\n{} of {} requests change ({}).\n\n| Guardrail | Requests gaining it | Requests losing it |\n|---|---|---|\n",
            t.changed,
            t.requests,
            percent(t.changed, t.requests)
        ));
        for g in &t.guardrails {
            o.push_str(&format!(
                "| `{}` | {} | {} |\n",
                g.guardrail, g.gained, g.lost
            ));
        }
        if let Some(m) = &t.messages {
            o.push_str(&format!(
                "\nWith {} sample messages run through the guardrails, about {} of the changed requests would now be blocked, {} masked, and {} no longer blocked.\n",
                m.samples, m.blocked, m.masked, m.unblocked
            ));
        }
        o.push('\n');
    }
    o
}
