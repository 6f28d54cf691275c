//! `mobile-client`: see `mobile-client --help` and the README.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = mobile_client::Cli::parse();
    let mut out = std::io::stdout();
    match mobile_client::run(cli, &mut out).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
