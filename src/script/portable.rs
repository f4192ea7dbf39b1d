//! Values that cross between Lua states (setup → worker threads → done) by copy: nil,
//! booleans, numbers, strings and tables of those, as wrk allows for `thread:set`/`get`.
//!
//! Used by the other script files.

use mlua::{Lua, Value};

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

pub(super) fn to_portable(v: &Value, depth: u32) -> Option<Portable> {
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

pub(super) fn from_portable(lua: &Lua, p: &Portable) -> mlua::Result<Value> {
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

pub(super) fn portable_arg(v: &Value) -> mlua::Result<Portable> {
    to_portable(v, 0).ok_or_else(|| {
        mlua::Error::runtime(
            "only nil, booleans, numbers, strings and tables of those can cross threads",
        )
    })
}
