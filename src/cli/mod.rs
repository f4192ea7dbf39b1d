//! The command line, in two stages: raw clap `Args` (strings, as typed; `args.rs`) and
//! validated values (`validate.rs`): the engine's `Plan` plus the app's outputs. Every run
//! flag is parsed by hand from its string so a bad value becomes one line that names the
//! flag, says what is wrong and shows what works (`ConfigError`), before any traffic is sent.
//!
//! wrk2 command lines parse the same way: `-R1000 -c100 -d30s -t2 -L -U URL`.
//!
//! The top floor below `app`: nothing else in the crate imports `cli`.
//!
//! Used by `main`, `app` (which dispatches on the subcommand) and by tests (which build
//! plans from argument lists exactly as a user types them).

mod args;
mod validate;

pub use args::{
    Cli, Command, CompareArgs, DemoArgs, OutputArgs, ReportArgs, RunArgs, ServeArgs, SpectraArgs,
    SweepArgs,
};
pub use validate::{check_writable, parse_header, Outputs, RunCommand, SweepCommand};
