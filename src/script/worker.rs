//! One worker thread's state: `init(args)` before traffic, then `request()` for each
//! scheduled request, `response()` for each answer, `delay()` as a connection's think time,
//! and `wrk.thread:stop()`.
//!
//! Used by `engine::worker` (one `WorkerScript` per thread) and `engine::slot`.

use super::portable::{from_portable, portable_arg, to_portable, Portable};
use super::raw::{self, RawRequest};
use super::state::{hook, new_state, Addr, ScriptBase, ThreadSetup};
use super::{HookError, ScriptError};
use mlua::{Function, Lua, MetaMethod, Table, UserData, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The thread object in a worker state (`wrk.thread`): its index and address, as wrk2's
/// `addr.lua` prints them from `init()`, and `stop`, `get`, `set`.
struct WorkerThread {
    id: usize,
    addr: SocketAddr,
    stop: Rc<Cell<bool>>,
}

impl UserData for WorkerThread {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("id", |_, this| Ok(this.id));
        f.add_field_method_get("addr", |_, this| Ok(Addr::from(this.addr)));
    }
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
    /// The metatable of `response()`'s headers table: look-ups in any case.
    header_meta: Table,
}

/// The longest think time `delay()` may ask for: an hour, in ms.
const MAX_DELAY_MS: f64 = 3_600_000.0;

/// `Content-Type` for `content-type`: the canonical case of an HTTP/1 header name, which is
/// how nearly every server writes it (hyper keeps only the lower-cased name).
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// What one call of `request()` built: the request(s), the tag, and a context value for
/// `response()`.
pub struct Built<'a> {
    /// The request(s), in order.
    pub requests: Cow<'a, [RawRequest]>,
    /// `request()`'s second return value.
    pub tag: Option<String>,
    /// `request()`'s third return value, handed to `response()` as its fourth argument.
    pub context: Option<mlua::RegistryKey>,
}

impl WorkerScript {
    /// Loads the script in a new state for worker thread `thread` connecting to `addr`,
    /// applies `setup`'s globals, runs `init(args)`, and — on thread 0, as wrk does — calls
    /// `request()` once to check what it builds (one request, when `single`: HTTP/2 has
    /// no pipelining).
    pub fn new(
        base: &ScriptBase,
        setup: &ThreadSetup,
        thread: usize,
        addr: SocketAddr,
        single: bool,
    ) -> Result<WorkerScript, ScriptError> {
        let check = thread == 0;
        let (lua, builtins) = new_state(base)?;
        let stop = Rc::new(Cell::new(false));
        let load = |e: mlua::Error| ScriptError::Load(e.to_string());
        let g = lua.globals();
        for (k, v) in &setup.globals {
            g.set(k.as_str(), from_portable(&lua, v).map_err(load)?)
                .map_err(load)?;
        }
        let wrk: Table = g.get("wrk").map_err(load)?;
        wrk.set(
            "thread",
            WorkerThread {
                id: thread,
                addr: setup.addr.unwrap_or(addr),
                stop: stop.clone(),
            },
        )
        .map_err(load)?;
        // Header names arrive lower-cased; wrk's scripts look them up as the server wrote
        // them (`headers["X-Token"]`), so a look-up that misses tries every name without case.
        let header_meta = lua.create_table().map_err(load)?;
        let index = lua
            .create_function(|_, (t, key): (Table, Value)| {
                let Value::String(key) = key else {
                    return Ok(Value::Nil);
                };
                let key = key.to_string_lossy().to_ascii_lowercase();
                for pair in t.pairs::<mlua::String, Value>() {
                    let (name, v) = pair?;
                    if name.to_string_lossy().to_ascii_lowercase() == key {
                        return Ok(v);
                    }
                }
                Ok(Value::Nil)
            })
            .map_err(load)?;
        header_meta
            .set(MetaMethod::Index.name(), index)
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
        let mut checked = 0;
        let fixed = match &request {
            // No request(): the wrk table, as init() left it, is the request every time.
            None => {
                let format: Function = wrk.get("format").map_err(load)?;
                let s: mlua::String = format.call(()).map_err(load)?;
                raw::parse(&s.as_bytes()).map_err(bad)?
            }
            Some(f) if check => {
                let s: mlua::String = f.call(()).map_err(|e| bad(e.to_string()))?;
                checked = raw::parse(&s.as_bytes()).map_err(bad)?.len();
                Vec::new()
            }
            Some(_) => Vec::new(),
        };
        if single && checked.max(fixed.len()) > 1 {
            return Err(bad(format!(
                "returns {} requests in one string (wrk's pipelining); HTTP/2 has no \
                 pipelining: return one request per call, or drop --http2",
                checked.max(fixed.len())
            ))
            .into());
        }
        Ok(WorkerScript {
            response: hook(&lua, "response")?,
            delay: hook(&lua, "delay")?,
            request,
            fixed,
            builtins,
            lua,
            stop,
            header_meta,
        })
    }

    /// The request(s) to send next: the fixed one(s) without `request()` (no allocation),
    /// else what `request()` returns, parsed — with its tag, when it returned a second
    /// value.
    pub fn requests(&self) -> Result<Built<'_>, HookError> {
        match &self.request {
            None => Ok(Built {
                requests: Cow::Borrowed(&self.fixed),
                tag: None,
                context: None,
            }),
            Some(f) => {
                let (s, tag, context): (mlua::String, Option<mlua::String>, Value) =
                    f.call(()).map_err(|e| HookError::new("request", e))?;
                let tag = match tag {
                    None => None,
                    Some(t) => {
                        let t = t.to_string_lossy();
                        if !crate::mix::valid_tag(&t) {
                            return Err(HookError::new(
                                "request",
                                format!(
                                    "tag {t:?}: a tag is 1–64 characters, none of them a \
                                     control character, quote or {{ }} , ="
                                ),
                            ));
                        }
                        Some(t)
                    }
                };
                let requests =
                    raw::parse(&s.as_bytes()).map_err(|e| HookError::new("request", e))?;
                let context = match context {
                    Value::Nil => None,
                    v => Some(
                        self.lua
                            .create_registry_value(v)
                            .map_err(|e| HookError::new("request", e))?,
                    ),
                };
                Ok(Built {
                    requests: Cow::Owned(requests),
                    tag,
                    context,
                })
            }
        }
    }

    /// Whether `response()` is defined (and so bodies must be collected).
    pub fn wants_response(&self) -> bool {
        self.response.is_some()
    }

    /// Calls `response(status, headers, body, context)`: `context` is the third value
    /// `request()` returned for this request (nil when it returned none).
    pub fn response(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        context: Option<&mlua::RegistryKey>,
    ) -> Result<(), HookError> {
        let Some(f) = &self.response else {
            return Ok(());
        };
        let run = || -> mlua::Result<()> {
            let h = self.lua.create_table()?;
            for (k, v) in headers {
                h.raw_set(title_case(k), v.as_str())?;
            }
            h.set_metatable(Some(self.header_meta.clone()))?;
            let ctx: Value = match context {
                Some(k) => self.lua.registry_value(k)?,
                None => Value::Nil,
            };
            f.call::<()>((status, h, self.lua.create_string(body)?, ctx))
        };
        run().map_err(|e| HookError::new("response", e))
    }

    /// Lets go of a request's context once its response (or failure) is handled.
    pub fn forget(&self, context: Option<mlua::RegistryKey>) {
        if let Some(k) = context {
            let _ = self.lua.remove_registry_value(k);
        }
    }

    /// `delay()`, as a connection think time.
    pub fn delay(&self) -> Result<Option<Duration>, HookError> {
        let Some(f) = &self.delay else {
            return Ok(None);
        };
        let ms: f64 = f.call(()).map_err(|e| HookError::new("delay", e))?;
        // A think time is 0 ms to an hour; NaN, infinity or more than an hour is a script
        // bug to report, not a panic or a connection parked forever. Negative means none.
        if ms.is_nan() || ms > MAX_DELAY_MS {
            return Err(HookError::new(
                "delay",
                format!("returned {ms} ms: expected milliseconds from 0 to {MAX_DELAY_MS}"),
            ));
        }
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
