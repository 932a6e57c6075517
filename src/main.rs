//! The `provisio` binary: parses the command line and hands over to the library.

use clap::Parser;
use provisio::cli::{Cli, run};

#[tokio::main]
async fn main() {
    // reqwest and sqlx use rustls with the ring provider; it must be chosen before the first TLS use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}
