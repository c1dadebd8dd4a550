//! The `pixelguard` binary: parse the command line, set up logging, build the runtime, run the
//! chosen command, map failures to the documented exit codes.

use std::process::ExitCode;

use clap::Parser;
use pixelguard::app::{App, ConfigSource};
use pixelguard::cli::{Cli, Command, exit};
use pixelguard::config::Overrides;

fn init_logging(level: Option<&str>) {
    // hickory's per-query INFO lines cost ~30% CPU (notes P2): keep them at warn unless asked.
    let default = format!(
        "{},hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=error",
        level.unwrap_or("info")
    );
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = ConfigSource {
        path: cli.common.config.clone(),
        overrides: Overrides {
            listen: cli.common.listen.clone(),
            upstream: cli.common.upstream.clone(),
            block: cli.common.block.clone(),
        },
    };
    let code = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(source),
        Command::Check => pixelguard::check::check(&source),
        Command::Lists { action } => lists_command(source, action),
        Command::Audit(args) => pixelguard::audit::run(&source, &args),
        Command::Explain {
            client,
            name,
            qtype,
            resolve,
        } => pixelguard::explain::explain(&source, client, &name, &qtype, resolve),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(source: ConfigSource) -> i32 {
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return exit::CONFIG;
        }
    };
    init_logging(config.log_level.as_deref());
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if config.server.workers > 0 {
        rt.worker_threads(config.server.workers);
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return exit::RUNTIME;
        }
    };
    rt.block_on(async move {
        let app = match App::start(source).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("pixelguard: {e:#}");
                return exit::RUNTIME;
            }
        };
        match app.run_until_signalled().await {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("pixelguard: {e:#}");
                exit::RUNTIME
            }
        }
    })
}

fn lists_command(source: ConfigSource, action: pixelguard::cli::ListsAction) -> i32 {
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return exit::CONFIG;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return exit::RUNTIME;
        }
    };
    rt.block_on(pixelguard::check::lists(
        &config,
        matches!(action, pixelguard::cli::ListsAction::Update),
    ))
}
