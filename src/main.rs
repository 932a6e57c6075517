//! The `provisio` binary: parses the command line and hands over to the library.

use clap::Parser;
use provisio::cli::{Cli, run};

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}
