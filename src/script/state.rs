//! A Lua state as wrk builds one: standard libraries, `json`, the `wrk` table (scheme,
//! host, port, method, path, headers, body, `lookup`, `connect`, `format`), the prelude,
//! then the user's script; and `hook`, which finds a hook the script defines.
//!
//! Used by `script::setup` (the main thread's state) and `script::worker` (one per thread).

use super::portable::Portable;
use super::{HookError, ScriptError};
use mlua::{Function, Lua, LuaSerdeExt, MetaMethod, SerializeOptions, UserData, Value};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PRELUDE: &str = include_str!("prelude.lua");

/// Everything a state needs to know about the run, shared by all threads.
#[derive(Debug, Clone)]
pub struct ScriptBase {
    /// The script file.
    pub path: PathBuf,
    /// Its contents, read once.
    pub source: Arc<Vec<u8>>,
    /// Words after `--`.
    pub args: Vec<String>,
    /// The target as the `wrk` table shows it.
    pub target: WrkTarget,
    /// `-m`
    pub method: String,
    /// `-H` headers, in order.
    pub headers: Vec<(String, String)>,
    /// `--body`
    pub body: Option<Vec<u8>>,
}

/// Where requests go, as plain values for the `wrk` table (`wrk.scheme`, `wrk.host`,
/// `wrk.port`, `wrk.path`, the Host header) and `init(args)`'s `args[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrkTarget {
    /// The URL as given.
    pub url: String,
    /// `https`?
    pub tls: bool,
    /// Host name or IP, without IPv6 brackets.
    pub host: String,
    /// Port (the scheme's default when the URL names none).
    pub port: u16,
    /// The Host header value.
    pub authority: String,
    /// Path and query.
    pub path: String,
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
pub(super) struct Addr(SocketAddr);

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr(a)
    }
}

impl UserData for Addr {
    fn add_methods<M: mlua::UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
    }
}

pub(super) fn addr_of(v: &Value) -> mlua::Result<SocketAddr> {
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
pub(super) fn new_state(base: &ScriptBase) -> Result<(Lua, Vec<String>), ScriptError> {
    let lua = Lua::new();
    let setup = || -> mlua::Result<()> {
        let g = lua.globals();
        // print() writes through the same stdout as the report (C's stdio would hold it in
        // its own buffer when stdout is a file, and put init()'s lines after the report);
        // a closed stdout is not the script's error.
        g.set(
            "print",
            lua.create_function(|lua, args: mlua::Variadic<Value>| {
                let tostring: Function = lua.globals().get("tostring")?;
                let mut line = Vec::new();
                for (i, a) in args.into_iter().enumerate() {
                    if i > 0 {
                        line.push(b'\t');
                    }
                    let s: mlua::String = tostring.call(a)?;
                    line.extend_from_slice(&s.as_bytes());
                }
                line.push(b'\n');
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&line).and_then(|_| out.flush());
                Ok(())
            })?,
        )?;
        // io.write keeps C's buffer; line by line, it stays in order with the report too.
        lua.load("io.stdout:setvbuf('line')").exec()?;
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
pub(super) fn hook(lua: &Lua, name: &'static str) -> Result<Option<Function>, ScriptError> {
    match lua.globals().get::<Value>(name) {
        Ok(Value::Nil) => Ok(None),
        Ok(Value::Function(f)) => Ok(Some(f)),
        Ok(other) => Err(HookError::new(
            name,
            format!("{name} must be a function, not a {}", other.type_name()),
        )
        .into()),
        Err(e) => Err(HookError::new(name, e).into()),
    }
}
