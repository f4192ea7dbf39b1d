//! Lua scripting with wrk's API (`-s FILE`): one LuaJIT state for `setup`/`done` on the
//! main thread, and one per worker thread for `init`/`request`/`response`/`delay`, as wrk
//! does. Values cross between states only by copy (`Portable`).
//!
//! Open loop stays intact: `request()` builds what is sent, never when. `delay()`, which in
//! wrk pauses a connection before its next request, is a per-connection think time here: the
//! connection takes no new request for that long, while the schedule keeps releasing
//! requests to other connections (or the queue, where their wait counts as latency).
//!
//! Files: `portable` (copying values between states), `state` (building a state and the
//! `wrk` table), `setup` (setup and done on the main thread), `worker` (a thread's state),
//! `raw` (parsing what `request()` returns).
//!
//! Used by `app` (setup and done), `engine::worker` (a `WorkerScript` per thread).

mod portable;
pub mod raw;
mod setup;
mod state;
mod worker;

pub use portable::Portable;
pub use setup::{DoneSummary, Script};
pub use state::{ScriptBase, ThreadSetup, WrkTarget};
pub use worker::WorkerScript;

/// A script that cannot run; each variant says where to look.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read, compiled, or its top level failed: fix the line named.
    #[error("script {0}")]
    Load(String),
    /// A hook that runs before traffic (`setup`, `init`, the first `request`) failed, or a
    /// global the runtime calls is not a function: fix the line named.
    #[error("script {0}")]
    Hook(#[from] HookError),
}

impl ScriptError {
    /// A script that cannot run is bad input: exit 2, before any traffic.
    pub fn exit_code(&self) -> i32 {
        crate::error::EXIT_USAGE
    }
}

/// A hook that failed: which one, and Lua's message (with file and line). During a run
/// these are counted per request (error class `script`), never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{hook}(): {message}")]
pub struct HookError {
    /// `setup`, `init`, `request`, `response`, `delay` or `done`.
    pub hook: &'static str,
    /// What went wrong.
    pub message: String,
}

impl HookError {
    /// The failure of `hook`, with its message: Lua's first lines (file, line and what
    /// went wrong), without the stack traceback that would make every report line differ.
    pub fn new(hook: &'static str, message: impl std::fmt::Display) -> HookError {
        let full = message.to_string();
        let message = full
            .split("\nstack traceback:")
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_string();
        HookError { hook, message }
    }
}
