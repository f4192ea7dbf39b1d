//! The main thread's state: `setup(thread)` once per worker thread before traffic, and
//! `done(summary, latency, requests)` after the report, with each thread's final globals
//! readable through `thread:get`.
//!
//! Used by `app` (load and done) through `Script`.

use super::portable::{from_portable, portable_arg, Portable};
use super::state::{addr_of, hook, new_state, Addr, ScriptBase, ThreadSetup};
use super::{HookError, ScriptError};
use crate::record::histogram::{percentile, Hist};
use mlua::{AnyUserData, Lua, MetaMethod, UserData, Value};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The thread object in the setup state.
struct SetupThread {
    index: usize,
    addr: Option<SocketAddr>,
    changed_addr: bool,
    vars: Vec<(String, Portable)>,
    finals: HashMap<String, Portable>,
}

impl UserData for SetupThread {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("addr", |_, this| Ok(this.addr.map(Addr::from)));
        f.add_field_method_set("addr", |_, this, v: Value| {
            this.addr = Some(addr_of(&v)?);
            this.changed_addr = true;
            Ok(())
        });
        f.add_field_method_get("id", |_, this| Ok(this.index));
    }
    fn add_methods<M: mlua::UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get", |lua, this, name: String| {
            let p = this.finals.get(&name).or_else(|| {
                this.vars
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v)
            });
            p.map_or(Ok(Value::Nil), |p| from_portable(lua, p))
        });
        m.add_method_mut("set", |_, this, (name, v): (String, Value)| {
            let p = portable_arg(&v)?;
            this.vars.retain(|(k, _)| *k != name);
            this.vars.push((name, p));
            Ok(())
        });
        m.add_method("stop", |_, _, ()| Ok(()));
    }
}

/// The setup/done state, on the main thread.
pub struct Script {
    lua: Lua,
    threads: Vec<AnyUserData>,
}

impl Script {
    /// Loads the script, and runs `setup(thread)` once per worker thread.
    pub fn load(
        base: &ScriptBase,
        threads: usize,
        addr: SocketAddr,
    ) -> Result<Script, ScriptError> {
        let (lua, _) = new_state(base)?;
        let setup = hook(&lua, "setup")?;
        // The other hooks must be functions if defined: say so now, not per thread.
        for name in ["init", "request", "response", "delay", "done"] {
            hook(&lua, name)?;
        }
        let mut uds = Vec::with_capacity(threads);
        for index in 0..threads {
            let ud = lua
                .create_userdata(SetupThread {
                    index,
                    addr: Some(addr),
                    changed_addr: false,
                    vars: Vec::new(),
                    finals: HashMap::new(),
                })
                .map_err(|e| ScriptError::Load(e.to_string()))?;
            if let Some(f) = &setup {
                f.call::<()>(ud.clone())
                    .map_err(|e| HookError::new("setup", e))?;
            }
            uds.push(ud);
        }
        Ok(Script { lua, threads: uds })
    }

    /// Whether the script defines `done()` (which prints to stdout).
    pub fn has_done(&self) -> bool {
        matches!(hook(&self.lua, "done"), Ok(Some(_)))
    }

    /// What each worker thread starts with.
    pub fn thread_setups(&self) -> Vec<ThreadSetup> {
        self.threads
            .iter()
            .map(|ud| {
                let t = ud.borrow::<SetupThread>().expect("our own userdata");
                ThreadSetup {
                    addr: t.addr.filter(|_| t.changed_addr),
                    globals: t.vars.clone(),
                }
            })
            .collect()
    }

    /// Runs `done(summary, latency, requests)`, with each thread's final globals readable
    /// through `thread:get`.
    pub fn done(
        &self,
        summary: &DoneSummary,
        finals: &[Vec<(String, Portable)>],
    ) -> Result<(), HookError> {
        for (ud, f) in self.threads.iter().zip(finals) {
            if let Ok(mut t) = ud.borrow_mut::<SetupThread>() {
                t.finals = f.iter().cloned().collect();
            }
        }
        let Some(done) = hook(&self.lua, "done").map_err(|e| HookError::new("done", e))? else {
            return Ok(());
        };
        let run = || -> mlua::Result<()> {
            let lua = &self.lua;
            let s = lua.create_table()?;
            s.set("duration", summary.duration_us)?;
            s.set("requests", summary.requests)?;
            s.set("bytes", summary.bytes)?;
            let e = lua.create_table()?;
            for (k, v) in [
                ("connect", summary.errors[0]),
                ("read", summary.errors[1]),
                ("write", summary.errors[2]),
                ("status", summary.errors[3]),
                ("timeout", summary.errors[4]),
            ] {
                e.set(k, v)?;
            }
            s.set("errors", e)?;
            done.call::<()>((
                s,
                Stats(summary.latency.clone()),
                Stats(summary.requests_per_s.clone()),
            ))
        };
        run().map_err(|e| HookError::new("done", e))
    }
}

/// What `done()` is told about the run.
pub struct DoneSummary {
    /// Load duration, µs.
    pub duration_us: u64,
    /// Completed requests.
    pub requests: u64,
    /// Response bytes.
    pub bytes: u64,
    /// connect, read, write, status (HTTP status > 399), timeout.
    pub errors: [u64; 5],
    /// Corrected latency, µs.
    pub latency: Hist,
    /// Completed requests per second of the run, one value per second.
    pub requests_per_s: Hist,
}

/// A statistics object for `done()`: wrk's and wrk2's interfaces both.
struct Stats(Hist);

impl UserData for Stats {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("min", |_, s| Ok(s.0.min()));
        f.add_field_method_get("max", |_, s| Ok(s.0.max()));
        f.add_field_method_get("mean", |_, s| Ok(s.0.mean()));
        f.add_field_method_get("stdev", |_, s| Ok(s.0.stdev()));
    }
    fn add_methods<M: mlua::UserDataMethods<Self>>(m: &mut M) {
        m.add_method("percentile", |_, s, p: f64| Ok(percentile(&s.0, p)));
        // wrk2: obj[i] is the value at percentile 100·i/#obj, and #obj the total count.
        m.add_meta_method(MetaMethod::Index, |_, s, i: f64| {
            let n = s.0.len().max(1) as f64;
            Ok(percentile(&s.0, 100.0 * i / n))
        });
        m.add_meta_method(MetaMethod::Len, |_, s, ()| Ok(s.0.len()));
        // wrk: obj(i) is the i-th distinct recorded value (from 1) and its count.
        m.add_meta_method(MetaMethod::Call, |_, s, i: usize| {
            let v = s.0.iter_recorded().nth(i.saturating_sub(1));
            Ok(match v {
                Some(v) => (
                    Some(s.0.highest_equivalent(v.value_iterated_to())),
                    Some(v.count_at_value()),
                ),
                None => (None, None),
            })
        });
    }
}
