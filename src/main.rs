//! The `guardrail-operator` binary: a thin dispatcher over the library.

use clap::Parser;
use guardrail_operator::cli::{self, Cli, Command};

fn main() {
    // `guardrail-operator ... | head` closes stdout early: end quietly like other CLI tools
    // (exit 141, as for SIGPIPE) instead of reporting a panic.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    // `plan --detailed-exitcode` reserves 2 for "changes": a usage error there exits 1.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() && std::env::args().nth(1).as_deref() == Some("plan") {
                1
            } else {
                e.exit_code()
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let result = match &cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Crds(args) => cli::crds(args).map(|()| 0),
        Command::Validate(args) => cli::validate::run(args),
        Command::Resolve(args) => cli::resolve::run(args),
        Command::Test(args) => cli::test::run(args),
        Command::Render(args) => cli::render::run(args),
        Command::Diff(args) => cli::diff::run(args),
        Command::Plan(args) => cli::plan::run(args),
        Command::NewVersion(a) => cli::block_on(cli::live::new_version(
            &a.cluster,
            &a.policy,
            a.from,
            a.dry_run,
            a.output.is_some(),
        )),
        Command::Publish(a) => cli::block_on(cli::live::set(
            &a.cluster,
            &a.wait,
            &a.policy,
            a.version,
            guardrail_operator::api::Stage::Published,
        )),
        Command::Promote(a) => cli::block_on(cli::live::set(
            &a.cluster,
            &a.wait,
            &a.policy,
            a.version,
            guardrail_operator::api::Stage::Production,
        )),
        Command::Rollback(a) => {
            cli::block_on(cli::live::rollback(&a.cluster, &a.wait, &a.policy, a.to))
        }
        Command::Status(a) => cli::block_on(cli::live::status(&a.cluster, a.policy.as_deref())),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::exit(e.code);
        }
    }
}
