//! `watchpostctl`: the operator's command line over the collector's HTTP
//! API. Tables for people, `--json` for scripts.
//!
//! `args` is the command line, `client` the API client, `commands` one
//! module per command group, `format` and `table` how answers are shown.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod client;
mod commands;
mod format;
mod table;

fn main() -> ExitCode {
    let args = args::Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("watchpostctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watchpostctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
