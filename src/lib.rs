//! ratebench: an open-loop, constant-rate HTTP load generator and latency recorder.
//!
//! The binary is a thin `main` over this library; tests and benches drive the same code.
//! See `README.md` for the user's view and `app` for how the pieces fit.
//!
//! The modules form floors, each importing only from the floors below it:
//! `app` → `cli` → `sweep` → `report` → `engine` (with its `Plan`) → `run` → `script`, `record` →
//! `pacer`, `stream`, `serve`, `clock` → `units`, `outcome`, `error`.

pub mod app;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod error;
pub mod live;
pub mod metrics;
pub mod mix;
pub mod outcome;
pub mod pacer;
pub mod pem;
pub mod prompts;
pub mod record;
pub mod report;
pub mod run;
pub mod script;
pub mod serve;
pub mod stream;
pub mod sweep;
pub mod tokens;
pub mod units;
