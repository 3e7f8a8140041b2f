//! `huimin`: one binary for every service and the admin commands.

use clap::Parser as _;

/// mimalloc rather than glibc's malloc: under load glibc's arena locks and
/// chunk consolidation were a fifth of a cached lookup's CPU (`scripts/bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = huimin::commands::Cli::parse();
    match huimin::commands::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line naming what is wrong; details went to the log.
            eprintln!("huimin: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
