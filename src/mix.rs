//! Traffic mixes: several kinds of request in one run, each with a tag.
//!
//! - `--targets FILE`: Vegeta's `http` format (`METHOD URL`, header lines, an optional
//!   `@path` body line, blank lines between targets; `#` comments) or JSONL (one target per
//!   line: `method`, `url`, `header` (name → list of values), `body` or `body_base64`,
//!   `tag`, `weight`), told apart by the first non-blank character (`{` is JSONL).
//! - `--prompts FILE.jsonl` with `--model NAME[=WEIGHT]`: OpenAI chat-completions bodies,
//!   prompts taken in turn, models by weight, each model a tag.
//!
//! Which target request k gets is a pure function of k: smooth weighted round-robin over one
//! period of the weights (`order`), so shares are exact, deterministic, the same on every
//! thread and shard, and never depend on timing.
//!
//! A leaf below the engine: used by `cli` (parsing, before any traffic) and `engine::conn`
//! (building each request).

use crate::error::{invalid, ConfigError};
use base64::Engine as _;
use bytes::Bytes;
use std::path::Path;

/// The most distinct tags (and `--group-by-header` values) a run keeps apart.
pub const MAX_TAGS: usize = 64;

/// The longest smooth weighted round-robin period (the sum of the reduced weights).
pub const MAX_PERIOD: u64 = 1_000_000;

/// One kind of request in a mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// Method.
    pub method: String,
    /// Absolute URL (scheme, host, port, path and query).
    pub url: String,
    /// Headers, in order, as (name, value).
    pub headers: Vec<(String, String)>,
    /// Body (empty: none).
    pub body: Bytes,
    /// Tag (None: "METHOD path" is used).
    pub tag: Option<String>,
    /// Share weight (≥ 1).
    pub weight: u64,
    /// Where it came from (`file:line`), for errors.
    pub origin: String,
}

/// Reads a targets file, Vegeta `http` or JSONL; every error names `file:line`.
pub fn read_targets(path: &Path) -> Result<Vec<RequestSpec>, ConfigError> {
    // `-`: standard input, as Vegeta's `-targets` defaults to (`… | ratebench --targets -`).
    let (name, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| invalid("--targets", "-", format!("cannot read standard input: {e}")))?;
        ("stdin".to_string(), text)
    } else {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("--targets", &name, format!("cannot read it: {e}")))?;
        (name, text)
    };
    let jsonl = text.trim_start().starts_with('{');
    let targets = if jsonl {
        parse_jsonl(&text, &name)?
    } else {
        parse_http(&text, &name)?
    };
    if targets.is_empty() {
        return Err(invalid("--targets", &name, "no targets in the file"));
    }
    Ok(targets)
}

fn at(file: &str, line: usize, why: impl std::fmt::Display) -> ConfigError {
    invalid("--targets", &format!("{file}:{line}"), why)
}

/// Whether `line` is `METHOD http(s)://…` (a method in capitals, then a URL).
fn starts_target(line: &str) -> bool {
    line.split_once(char::is_whitespace)
        .is_some_and(|(m, rest)| {
            !m.is_empty()
                && m.bytes().all(|b| b.is_ascii_uppercase())
                && ["http://", "https://"]
                    .iter()
                    .any(|s| rest.trim_start().starts_with(s))
        })
}

/// Vegeta's `http` format.
pub fn parse_http(text: &str, file: &str) -> Result<Vec<RequestSpec>, ConfigError> {
    let mut out: Vec<RequestSpec> = Vec::new();
    let mut current: Option<RequestSpec> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            out.extend(current.take());
            continue;
        }
        // `GET http://…` right after a target's lines starts the next one, as Vegeta's
        // parser reads its one-target-per-line form (no blank line between).
        if current.is_some() && starts_target(line) {
            out.extend(current.take());
        }
        match current.as_mut() {
            None => {
                let (method, url) = line.split_once(char::is_whitespace).ok_or_else(|| {
                    at(
                        file,
                        n,
                        "expected METHOD URL, e.g. GET http://127.0.0.1:8080/",
                    )
                })?;
                let method = method.trim();
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(at(file, n, format!("{method:?} is not an HTTP method")));
                }
                current = Some(RequestSpec {
                    method: method.to_ascii_uppercase(),
                    url: url.trim().to_string(),
                    headers: Vec::new(),
                    body: Bytes::new(),
                    tag: None,
                    weight: 1,
                    origin: format!("{file}:{n}"),
                });
            }
            Some(t) if line.starts_with('@') => {
                let p = line[1..].trim();
                let body =
                    std::fs::read(p).map_err(|e| at(file, n, format!("body file {p}: {e}")))?;
                t.body = Bytes::from(body);
            }
            Some(t) => {
                let (k, v) = line.split_once(':').ok_or_else(|| {
                    at(
                        file,
                        n,
                        "expected a header (Name: value), an @body line, or a blank line \
                         before the next target",
                    )
                })?;
                if !t.body.is_empty() {
                    return Err(at(file, n, "headers go before the @body line"));
                }
                t.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out.extend(current);
    Ok(out)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTarget {
    #[serde(default = "get")]
    method: String,
    url: String,
    #[serde(default)]
    header: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    weight: Option<u64>,
}

fn get() -> String {
    "GET".into()
}

/// JSONL targets.
pub fn parse_jsonl(text: &str, file: &str) -> Result<Vec<RequestSpec>, ConfigError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let t: JsonTarget = serde_json::from_str(line).map_err(|e| {
            at(
                file,
                n,
                format!(
                    "{e} (a target is {{\"method\", \"url\", \"header\": {{name: [values]}}, \
                     \"body\" or \"body_base64\", \"tag\", \"weight\"}})"
                ),
            )
        })?;
        let body = match (t.body, t.body_base64) {
            (Some(_), Some(_)) => return Err(at(file, n, "give body or body_base64, not both")),
            (Some(b), None) => Bytes::from(b),
            (None, Some(b)) => Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .map_err(|e| at(file, n, format!("body_base64: {e}")))?,
            ),
            (None, None) => Bytes::new(),
        };
        let weight = t.weight.unwrap_or(1);
        if weight == 0 {
            return Err(at(file, n, "weight must be a whole number ≥ 1"));
        }
        if t.tag.as_deref().is_some_and(|g| !valid_tag(g)) {
            return Err(at(
                file,
                n,
                "a tag is 1–64 characters, none of them a control character, quote or { } ,",
            ));
        }
        out.push(RequestSpec {
            method: t.method.to_ascii_uppercase(),
            url: t.url,
            headers: t
                .header
                .into_iter()
                .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
                .collect(),
            body,
            tag: t.tag,
            weight,
            origin: format!("{file}:{n}"),
        });
    }
    Ok(out)
}

/// Whether `t` can be a tag: it appears in JSON keys, CSV headers, log tags and
/// thresholds' `{tag=…}` filters.
pub fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.chars().count() <= 64
        && !t
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '{' | '}' | ',' | '=' | '<' | '>'))
}

/// One period of smooth weighted round-robin over `weights` (reduced by their common
/// divisor): request k goes to `order[k % order.len()]`. nginx's algorithm: each step every
/// entry gains its weight, the largest is picked and loses the total — so picks are spread
/// evenly, not in runs.
pub fn swrr_order(weights: &[u64]) -> Result<Vec<u16>, String> {
    let g = weights.iter().copied().fold(0, gcd);
    let w: Vec<i128> = weights.iter().map(|&x| i128::from(x / g.max(1))).collect();
    let total: i128 = w.iter().sum();
    if total as u64 > MAX_PERIOD {
        return Err(format!(
            "the weights add up to {total} after reducing by their common divisor; at most \
             {MAX_PERIOD} (use smaller whole numbers)"
        ));
    }
    let mut current = vec![0i128; w.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u16);
    }
    Ok(order)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Parses `--model NAME[=WEIGHT]`.
pub fn parse_model(s: &str) -> Result<(String, u64), ConfigError> {
    let (name, weight) = match s.rsplit_once('=') {
        Some((n, w)) => (
            n.trim(),
            w.trim()
                .parse::<u64>()
                .ok()
                .filter(|w| *w >= 1)
                .ok_or_else(|| invalid("--model", s, "WEIGHT must be a whole number ≥ 1"))?,
        ),
        None => (s.trim(), 1),
    };
    if !valid_tag(name) {
        return Err(invalid(
            "--model",
            s,
            "a model name is 1–64 characters, none of them a control character, quote or { } , =",
        ));
    }
    Ok((name.to_string(), weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swrr_is_exact_and_spread() {
        let o = swrr_order(&[1, 3]).unwrap();
        assert_eq!(o.len(), 4);
        assert_eq!(o.iter().filter(|&&i| i == 0).count(), 1);
        // nginx's smooth order for 5:1:1 is a a b a c a a.
        let o = swrr_order(&[5, 1, 1]).unwrap();
        assert_eq!(o, vec![0, 0, 1, 0, 2, 0, 0]);
        // Reduced by the common divisor.
        assert_eq!(swrr_order(&[100, 300]).unwrap().len(), 4);
        assert!(swrr_order(&[MAX_PERIOD, 1]).is_err());
    }

    #[test]
    fn vegeta_http_format() {
        let t = parse_http(
            "# comment\nGET http://h:1/a?x=1\nX-A: 1\nX-B: two words\n\n\nPOST http://h:1/b\n",
            "t",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[0].headers,
            vec![
                ("X-A".into(), "1".into()),
                ("X-B".into(), "two words".into())
            ]
        );
        assert_eq!(
            (t[1].method.as_str(), t[1].url.as_str()),
            ("POST", "http://h:1/b")
        );
        let e = parse_http("GET http://h/\nnot a header\n", "f.txt").unwrap_err();
        assert!(e.to_string().contains("f.txt:2"), "{e}");
        // One target per line, no blank lines between (Vegeta reads it so), headers still
        // attached to the line above them.
        let t = parse_http(
            "GET http://h/a\nGET http://h/b\nX-K: 1\nPOST https://h/c\n",
            "t",
        )
        .unwrap();
        let urls: Vec<&str> = t.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(urls, ["http://h/a", "http://h/b", "https://h/c"]);
        assert_eq!(t[1].headers, vec![("X-K".into(), "1".into())]);
        assert!(t[0].headers.is_empty() && t[2].headers.is_empty());
    }

    #[test]
    fn the_readmes_gateway_example_file_parses() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway-keys.jsonl");
        let t = read_targets(&path).unwrap();
        let tags: Vec<_> = t.iter().map(|x| x.tag.as_deref().unwrap()).collect();
        assert_eq!(tags, ["key-a", "key-b"]);
        assert!(t
            .iter()
            .all(|x| x.url == "http://127.0.0.1:8080/v1/chat/completions"));
    }

    #[test]
    fn jsonl_format() {
        let t = parse_jsonl(
            "{\"url\":\"http://h/a\",\"tag\":\"a\",\"weight\":3,\"header\":{\"K\":[\"1\",\"2\"]},\"body\":\"hi\"}\n\n\
             {\"method\":\"post\",\"url\":\"http://h/b\",\"body_base64\":\"aGk=\"}\n",
            "t.jsonl",
        )
        .unwrap();
        assert_eq!(t[0].headers.len(), 2);
        assert_eq!((t[0].weight, t[0].tag.as_deref()), (3, Some("a")));
        assert_eq!(t[1].body, Bytes::from_static(b"hi"));
        assert_eq!(t[1].method, "POST");
        let e = parse_jsonl("{\"url\":\"http://h/\"}\n{\"url\":1}\n", "t.jsonl").unwrap_err();
        assert!(e.to_string().contains("t.jsonl:2"), "{e}");
        let e = parse_jsonl("{\"url\":\"http://h/\",\"weight\":0}\n", "w").unwrap_err();
        assert!(e.to_string().contains("w:1"), "{e}");
    }

    #[test]
    fn model_weights() {
        assert_eq!(parse_model("gpt=3").unwrap(), ("gpt".into(), 3));
        assert!(parse_model("gpt=0").is_err());
    }
}
