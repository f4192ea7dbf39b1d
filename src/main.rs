//! Parse the arguments, run the command, and turn an error into an exit code; nothing else.

use clap::Parser;

fn main() {
    let cli = match ratebench::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(), // clap prints usage errors itself and exits 2
    };
    if let Err(e) = ratebench::app::run(cli) {
        eprintln!("ratebench: error: {e}");
        std::process::exit(e.exit_code());
    }
}
