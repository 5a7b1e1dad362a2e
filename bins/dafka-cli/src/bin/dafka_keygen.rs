//! dafka_keygen: makes a CURVE key pair for a Dafka node.

use clap::Parser;
use dafka::keys::{generate, write_pair};
use dafka_cli::{main_with, parse};
use std::path::PathBuf;
use std::process::ExitCode;

/// Make a CURVE key pair for a node: NAME.secret (mode 0600, stays on the
/// node) and NAME.public (given to the others), each one line of Z85.
/// Prints the public key. Never overwrites a key file.
#[derive(Parser, Debug)]
#[command(name = "dafka_keygen", version)]
struct Cli {
    /// Where to write: NAME.secret and NAME.public
    name: PathBuf,
}

fn main() -> ExitCode {
    let cli: Cli = parse("dafka_keygen");
    main_with("dafka_keygen", || {
        let pair = generate()?;
        let (secret, public) = write_pair(&cli.name, &pair)?;
        eprintln!(
            "dafka_keygen: wrote {} (secret, mode 0600) and {}",
            secret.display(),
            public.display()
        );
        println!("{}", pair.public);
        Ok(ExitCode::SUCCESS)
    })
}
