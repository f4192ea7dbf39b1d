//! ratebench: an open-loop, constant-rate HTTP load generator and latency recorder.
//!
//! The binary is a thin `main` over this library; tests and benches drive the same code.
//! See `README.md` for the user's view and `app` for how the pieces fit.

pub mod app;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod pacer;
pub mod record;
pub mod report;
pub mod script;
pub mod serve;
pub mod stream;
