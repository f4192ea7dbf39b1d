//! One worker thread's state: `init(args)` before traffic, then `request()` for each
//! scheduled request, `response()` for each answer, `delay()` as a connection's think time,
//! and `wrk.thread:stop()`.
//!
//! Used by `engine::worker` (one `WorkerScript` per thread) and `engine::slot`.

use super::portable::{from_portable, portable_arg, to_portable, Portable};
use super::raw::{self, RawRequest};
use super::state::{hook, new_state, ScriptBase, ThreadSetup};
use super::{HookError, ScriptError};
use mlua::{Function, Lua, Table, UserData, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// The thread object in a worker state.
struct WorkerThread {
    stop: Rc<Cell<bool>>,
}

impl UserData for WorkerThread {
    fn add_methods<M: mlua::UserDataMethods<Self>>(m: &mut M) {
        m.add_method("stop", |_, this, ()| {
            this.stop.set(true);
            Ok(())
        });
        m.add_method("get", |lua, _, name: String| {
            lua.globals().get::<Value>(name)
        });
        m.add_method("set", |lua, _, (name, v): (String, Value)| {
            portable_arg(&v)?;
            lua.globals().set(name, v)
        });
    }
}

/// One worker thread's state.
pub struct WorkerScript {
    lua: Lua,
    builtins: Vec<String>,
    request: Option<Function>,
    response: Option<Function>,
    delay: Option<Function>,
    fixed: Vec<RawRequest>,
    stop: Rc<Cell<bool>>,
}

impl WorkerScript {
    /// Loads the script in a new state, applies `setup`'s globals, runs `init(args)`, and —
    /// when `check` (thread 0, as wrk does) — calls `request()` once to check what it builds.
    pub fn new(
        base: &ScriptBase,
        setup: &ThreadSetup,
        check: bool,
    ) -> Result<WorkerScript, ScriptError> {
        let (lua, builtins) = new_state(base)?;
        let stop = Rc::new(Cell::new(false));
        let load = |e: mlua::Error| ScriptError::Load(e.to_string());
        let g = lua.globals();
        for (k, v) in &setup.globals {
            g.set(k.as_str(), from_portable(&lua, v).map_err(load)?)
                .map_err(load)?;
        }
        let wrk: Table = g.get("wrk").map_err(load)?;
        wrk.set("thread", WorkerThread { stop: stop.clone() })
            .map_err(load)?;
        if let Some(init) = hook(&lua, "init")? {
            let args = lua.create_table().map_err(load)?;
            args.set(0, base.target.url.as_str()).map_err(load)?;
            for (i, a) in base.args.iter().enumerate() {
                args.set(i + 1, a.as_str()).map_err(load)?;
            }
            init.call::<()>(args)
                .map_err(|e| HookError::new("init", e))?;
        }
        let request = hook(&lua, "request")?;
        let bad = |m: String| HookError::new("request", m);
        let fixed = match &request {
            // No request(): the wrk table, as init() left it, is the request every time.
            None => {
                let format: Function = wrk.get("format").map_err(load)?;
                let s: mlua::String = format.call(()).map_err(load)?;
                raw::parse(&s.as_bytes()).map_err(bad)?
            }
            Some(f) if check => {
                let s: mlua::String = f.call(()).map_err(|e| bad(e.to_string()))?;
                raw::parse(&s.as_bytes()).map_err(bad)?;
                Vec::new()
            }
            Some(_) => Vec::new(),
        };
        Ok(WorkerScript {
            response: hook(&lua, "response")?,
            delay: hook(&lua, "delay")?,
            request,
            fixed,
            builtins,
            lua,
            stop,
        })
    }

    /// The request(s) to send next: the fixed one(s) without `request()` (no allocation),
    /// else what `request()` returns, parsed.
    pub fn requests(&self) -> Result<Cow<'_, [RawRequest]>, HookError> {
        match &self.request {
            None => Ok(Cow::Borrowed(&self.fixed)),
            Some(f) => {
                let s: mlua::String = f.call(()).map_err(|e| HookError::new("request", e))?;
                raw::parse(&s.as_bytes())
                    .map(Cow::Owned)
                    .map_err(|e| HookError::new("request", e))
            }
        }
    }

    /// Whether `response()` is defined (and so bodies must be collected).
    pub fn wants_response(&self) -> bool {
        self.response.is_some()
    }

    /// Calls `response(status, headers, body)`.
    pub fn response(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), HookError> {
        let Some(f) = &self.response else {
            return Ok(());
        };
        let run = || -> mlua::Result<()> {
            let h = self.lua.create_table()?;
            for (k, v) in headers {
                h.set(k.as_str(), v.as_str())?;
            }
            f.call::<()>((status, h, self.lua.create_string(body)?))
        };
        run().map_err(|e| HookError::new("response", e))
    }

    /// `delay()`, as a connection think time.
    pub fn delay(&self) -> Result<Option<Duration>, HookError> {
        let Some(f) = &self.delay else {
            return Ok(None);
        };
        let ms: f64 = f.call(()).map_err(|e| HookError::new("delay", e))?;
        Ok(Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0)))
    }

    /// Whether `wrk.thread:stop()` was called.
    pub fn stopped(&self) -> bool {
        self.stop.get()
    }

    /// The script's own globals that can cross to the setup state (for `thread:get` in
    /// `done()`).
    pub fn export_globals(&self) -> Vec<(String, Portable)> {
        self.lua
            .globals()
            .pairs::<String, Value>()
            .filter_map(|p| p.ok())
            .filter(|(k, _)| !self.builtins.contains(k))
            .filter_map(|(k, v)| Some((k, to_portable(&v, 0)?)))
            .collect()
    }
}
