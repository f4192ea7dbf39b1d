//! Parse the arguments, run the command, and turn an error into an exit code; nothing else.

use clap::Parser;

fn main() {
    let cli = match ratebench::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version: clap prints them
        Err(e) => {
            // clap's own errors in the same one line as every other: what is wrong, and
            // its tip when it has one.
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // Which command's help to point at: the usage line's words before the first
            // argument (`ratebench sweep`).
            let command = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Usage: "))
                .map(|u| {
                    u.split_whitespace()
                        .take_while(|w| !w.starts_with(['-', '[', '<']))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "ratebench".into());
            // A missing argument is named (clap lists them on the lines that follow).
            let first = if e.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                let missing: Vec<&str> = text
                    .lines()
                    .skip(1)
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                format!("missing {}", missing.join(", "))
            } else {
                first.to_string()
            };
            // (Not the tip to pass a value after `--`: those words go to a script here.)
            let tip = lines
                .find_map(|l| l.strip_prefix("tip: "))
                .filter(|t| !t.contains("use '--"))
                .map(|t| format!("; {t}"))
                .unwrap_or_default();
            eprintln!("ratebench: error: {first}{tip} (see {command} --help)");
            std::process::exit(ratebench::error::EXIT_USAGE);
        }
    };
    if let Err(e) = ratebench::app::run(cli) {
        eprintln!("ratebench: error: {e}");
        std::process::exit(e.exit_code());
    }
}
