//! Lua scripting with wrk's API (`-s FILE`): one LuaJIT state for `setup`/`done` on the
//! main thread, and one per worker thread for `init`/`request`/`response`/`delay`, as wrk
//! does. Values cross between states only by copy (`Portable`).
//!
//! Open loop stays intact: `request()` builds what is sent, never when. `delay()`, which in
//! wrk pauses a connection before its next request, is a per-connection think time here: the
//! connection takes no new request for that long, while the schedule keeps releasing
//! requests to other connections (or the queue, where their wait counts as latency).
//!
//! Used by `app` (setup and done), `engine::worker` (a `WorkerScript` per thread).

pub mod raw;

use crate::cli::Target;
use crate::record::histogram::{percentile, Hist};
use mlua::{
    AnyUserData, Function, Lua, LuaSerdeExt, MetaMethod, SerializeOptions, Table, UserData, Value,
};
use raw::RawRequest;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

const PRELUDE: &str = include_str!("prelude.lua");

/// A script that cannot run; each variant says where to look.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read, compiled, or its top level failed: fix the line named.
    #[error("script {0}")]
    Load(String),
    /// A hook that runs before traffic (`setup`, `init`, the first `request`) failed.
    #[error("script {hook}(): {message}")]
    Hook {
        /// `setup`, `init` or `request`.
        hook: &'static str,
        /// Lua's message, with file and line.
        message: String,
    },
}

/// A Lua value that can be copied from one state to another.
#[derive(Debug, Clone, PartialEq)]
pub enum Portable {
    /// nil
    Nil,
    /// a boolean
    Bool(bool),
    /// an integer
    Int(i64),
    /// a number
    Num(f64),
    /// a string (bytes)
    Str(Vec<u8>),
    /// a table of such values
    Table(Vec<(Portable, Portable)>),
}

fn to_portable(v: &Value, depth: u32) -> Option<Portable> {
    Some(match v {
        Value::Nil => Portable::Nil,
        Value::Boolean(b) => Portable::Bool(*b),
        Value::Integer(i) => Portable::Int(*i),
        Value::Number(n) => Portable::Num(*n),
        Value::String(s) => Portable::Str(s.as_bytes().to_vec()),
        Value::Table(t) if depth < 32 => {
            let mut items = Vec::new();
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.ok()?;
                items.push((to_portable(&k, depth + 1)?, to_portable(&v, depth + 1)?));
            }
            Portable::Table(items)
        }
        _ => return None,
    })
}

fn from_portable(lua: &Lua, p: &Portable) -> mlua::Result<Value> {
    Ok(match p {
        Portable::Nil => Value::Nil,
        Portable::Bool(b) => Value::Boolean(*b),
        Portable::Int(i) => Value::Integer(*i),
        Portable::Num(n) => Value::Number(*n),
        Portable::Str(s) => Value::String(lua.create_string(s)?),
        Portable::Table(items) => {
            let t = lua.create_table()?;
            for (k, v) in items {
                t.raw_set(from_portable(lua, k)?, from_portable(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

fn portable_arg(v: &Value) -> mlua::Result<Portable> {
    to_portable(v, 0).ok_or_else(|| {
        mlua::Error::runtime(
            "only nil, booleans, numbers, strings and tables of those can cross threads",
        )
    })
}

/// Everything a state needs to know about the run, shared by all threads.
#[derive(Debug, Clone)]
pub struct ScriptBase {
    /// The script file.
    pub path: PathBuf,
    /// Its contents, read once.
    pub source: Arc<Vec<u8>>,
    /// Words after `--`.
    pub args: Vec<String>,
    /// The target.
    pub target: Target,
    /// `-m`
    pub method: String,
    /// `-H` headers, in order.
    pub headers: Vec<(String, String)>,
    /// `--body`
    pub body: Option<Vec<u8>>,
}

/// What `setup(thread)` decided for one worker thread.
#[derive(Debug, Clone, Default)]
pub struct ThreadSetup {
    /// `thread.addr`, if the script changed it.
    pub addr: Option<SocketAddr>,
    /// Globals set with `thread:set`.
    pub globals: Vec<(String, Portable)>,
}

/// An address object (`wrk.lookup`, `thread.addr`).
#[derive(Debug, Clone, Copy)]
struct Addr(SocketAddr);

impl UserData for Addr {
    fn add_methods<M: mlua::UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
    }
}

fn addr_of(v: &Value) -> mlua::Result<SocketAddr> {
    match v {
        Value::UserData(ud) => Ok(ud.borrow::<Addr>()?.0),
        Value::String(s) => s.to_str()?.parse().map_err(|_| {
            mlua::Error::runtime("thread.addr: expected an address from wrk.lookup or \"ip:port\"")
        }),
        _ => Err(mlua::Error::runtime(
            "thread.addr: expected an address from wrk.lookup",
        )),
    }
}

/// Builds a state: standard libraries, `json`, the `wrk` table, then the script itself.
fn new_state(base: &ScriptBase) -> Result<(Lua, Vec<String>), ScriptError> {
    let lua = Lua::new();
    let setup = || -> mlua::Result<()> {
        let g = lua.globals();
        // json
        let json = lua.create_table()?;
        json.set(
            "encode",
            lua.create_function(|lua, v: Value| {
                let j: serde_json::Value = lua.from_value(v)?;
                serde_json::to_string(&j).map_err(mlua::Error::external)
            })?,
        )?;
        json.set(
            "decode",
            lua.create_function(|lua, s: mlua::String| {
                let j: serde_json::Value =
                    serde_json::from_slice(&s.as_bytes()).map_err(mlua::Error::external)?;
                lua.to_value_with(&j, SerializeOptions::new().set_array_metatable(true))
            })?,
        )?;
        json.set("null", lua.null())?;
        g.set("json", json)?;
        // wrk
        let t = &base.target;
        let wrk = lua.create_table()?;
        wrk.set("scheme", if t.tls { "https" } else { "http" })?;
        wrk.set("host", t.host.as_str())?;
        let port_given = t
            .url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .is_some_and(|a| {
                a.rsplit_once(':').is_some_and(|(_, p)| {
                    p.chars().all(|c| c.is_ascii_digit()) && !a.ends_with(']')
                })
            });
        wrk.set(
            "port",
            if port_given {
                Value::String(lua.create_string(t.port.to_string())?)
            } else {
                Value::Nil
            },
        )?;
        wrk.set("method", base.method.as_str())?;
        wrk.set("path", t.path.as_str())?;
        let headers = lua.create_table()?;
        headers.set("Host", t.authority.as_str())?;
        for (k, v) in &base.headers {
            if k.eq_ignore_ascii_case("host") {
                headers.set("Host", Value::Nil)?;
            }
            headers.set(k.as_str(), v.as_str())?;
        }
        wrk.set("headers", headers)?;
        if let Some(b) = &base.body {
            wrk.set("body", lua.create_string(b)?)?;
        }
        wrk.set(
            "lookup",
            lua.create_function(|lua, (host, service): (String, Value)| {
                let port: u16 = match &service {
                    Value::Integer(i) => *i as u16,
                    Value::Number(n) => *n as u16,
                    Value::String(s) => s.to_str()?.parse().unwrap_or(match &*s.to_str()? {
                        "https" => 443,
                        _ => 80,
                    }),
                    _ => 80,
                };
                let list = lua.create_table()?;
                if let Ok(addrs) = (host.as_str(), port).to_socket_addrs() {
                    for (i, a) in addrs.enumerate() {
                        list.set(i + 1, Addr(a))?;
                    }
                }
                Ok(list)
            })?,
        )?;
        wrk.set(
            "connect",
            lua.create_function(|_, v: Value| {
                let a = addr_of(&v)?;
                Ok(std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
            })?,
        )?;
        wrk.set(
            "time_us",
            lua.create_function(|_, ()| {
                Ok(std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as i64))
            })?,
        )?;
        g.set("wrk", wrk)?;
        lua.load(PRELUDE)
            .set_name("@ratebench-prelude.lua")
            .exec()?;
        Ok(())
    };
    setup().map_err(|e| ScriptError::Load(format!("setting up Lua: {e}")))?;
    let builtins: Vec<String> = lua
        .globals()
        .pairs::<String, Value>()
        .filter_map(|p| p.ok().map(|(k, _)| k))
        .collect();
    lua.load(&base.source[..])
        .set_name(format!("@{}", base.path.display()))
        .exec()
        .map_err(|e| ScriptError::Load(e.to_string()))?;
    Ok((lua, builtins))
}

/// A hook the script defines, or None; an error if the name holds something else.
fn hook(lua: &Lua, name: &'static str) -> Result<Option<Function>, ScriptError> {
    match lua.globals().get::<Value>(name) {
        Ok(Value::Nil) => Ok(None),
        Ok(Value::Function(f)) => Ok(Some(f)),
        Ok(other) => Err(ScriptError::Hook {
            hook: name,
            message: format!("{name} must be a function, not a {}", other.type_name()),
        }),
        Err(e) => Err(ScriptError::Hook {
            hook: name,
            message: e.to_string(),
        }),
    }
}

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
        f.add_field_method_get("addr", |_, this| Ok(this.addr.map(Addr)));
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
                f.call::<()>(ud.clone()).map_err(|e| ScriptError::Hook {
                    hook: "setup",
                    message: e.to_string(),
                })?;
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
    ) -> Result<(), String> {
        for (ud, f) in self.threads.iter().zip(finals) {
            if let Ok(mut t) = ud.borrow_mut::<SetupThread>() {
                t.finals = f.iter().cloned().collect();
            }
        }
        let Some(done) = hook(&self.lua, "done").map_err(|e| e.to_string())? else {
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
        run().map_err(|e| format!("script done(): {e}"))
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
            init.call::<()>(args).map_err(|e| ScriptError::Hook {
                hook: "init",
                message: e.to_string(),
            })?;
        }
        let request = hook(&lua, "request")?;
        let bad = |m: String| ScriptError::Hook {
            hook: "request",
            message: m,
        };
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
    pub fn requests(&self) -> Result<Cow<'_, [RawRequest]>, String> {
        match &self.request {
            None => Ok(Cow::Borrowed(&self.fixed)),
            Some(f) => {
                let s: mlua::String = f.call(()).map_err(|e| format!("request(): {e}"))?;
                raw::parse(&s.as_bytes())
                    .map(Cow::Owned)
                    .map_err(|e| format!("request(): {e}"))
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
    ) -> Result<(), String> {
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
        run().map_err(|e| format!("response(): {e}"))
    }

    /// `delay()`, as a connection think time.
    pub fn delay(&self) -> Result<Option<Duration>, String> {
        let Some(f) = &self.delay else {
            return Ok(None);
        };
        let ms: f64 = f.call(()).map_err(|e| format!("delay(): {e}"))?;
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
