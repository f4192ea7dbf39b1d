//! Single values: `--resolve`, `--shard`, counts, `-H`, `--price`, `--until`.

use super::*;

/// Parses `--resolve HOST:PORT:ADDR` (ADDR may be an IPv6 address, bracketed or not).
pub(super) fn parse_resolve(s: &str) -> Result<(String, u16, std::net::IpAddr), ConfigError> {
    let hint = "expected HOST:PORT:ADDR, e.g. --resolve api.example.com:443:10.0.0.7";
    let mut parts = s.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("--resolve", s, hint));
    };
    let port: u16 = port.parse().map_err(|_| invalid("--resolve", s, hint))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip = addr.parse().map_err(|_| invalid("--resolve", s, hint))?;
    if host.is_empty() {
        return Err(invalid("--resolve", s, hint));
    }
    Ok((host.to_string(), port, ip))
}

/// Parses `--shard I/N`: 0 ≤ I < N.
pub(super) fn parse_shard(s: &str) -> Result<(u64, u64), ConfigError> {
    let hint = "expected I/N with 0 <= I < N, e.g. --shard 0/3 (Kubernetes: \
                --shard $(JOB_COMPLETION_INDEX)/3)";
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| invalid("--shard", s, hint))?;
    match (i.trim().parse::<u64>(), n.trim().parse::<u64>()) {
        (Ok(i), Ok(n)) if n >= 1 && i < n && n <= 100_000 => Ok((i, n)),
        _ => Err(invalid("--shard", s, hint)),
    }
}

/// Parses a positive whole number for `flag`.
pub(super) fn parse_count(flag: &'static str, s: &str) -> Result<usize, ConfigError> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(invalid(flag, s, "must be at least 1")),
        Ok(n) if n > 1_000_000 => Err(invalid(flag, s, "must be at most 1000000")),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid(flag, s, "expected a whole number, e.g. 10")),
    }
}

/// Parses one `-H` value: `Name: value` or `Name:value`.
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let example = "expected \"Name: value\", e.g. -H \"Authorization: Bearer xyz\"";
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| invalid("-H/--header", s, format!("no colon; {example}")))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| invalid("-H/--header", s, format!("invalid header name; {example}")))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| invalid("-H/--header", s, format!("invalid header value; {example}")))?;
    Ok((name, value))
}

/// Parses `--price MODEL=IN/OUT` (USD per million input and output tokens).
pub fn parse_price(s: &str) -> Result<crate::run::Price, ConfigError> {
    use crate::run::Price;
    let hint = "expected MODEL=IN/OUT in USD per million input/output tokens, e.g. gpt-4o=2.5/10";
    let (model, rest) = s
        .rsplit_once('=')
        .ok_or_else(|| invalid("--price", s, hint))?;
    let (i, o) = rest
        .split_once('/')
        .ok_or_else(|| invalid("--price", s, hint))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| invalid("--price", s, hint))
    };
    Ok(Price {
        model: model.trim().to_string(),
        input_per_m: num(i)?,
        output_per_m: num(o)?,
    })
}

/// Parses an `--until` goal: `p99:±2%` (also `p99:2%`, `p99.9:±5%`, `p50:±1%`, and for
/// streams `ttft_p99:±5%`) into its name, quantile and relative half-width.
pub(super) fn parse_until(s: &str) -> Result<(String, f64, f64), ConfigError> {
    let hint =
        "expected pNN:±B%, e.g. p99:±2% (run until the p99's 95 % interval is within ±2 % of it)";
    let (name, bound) = s
        .split_once(':')
        .ok_or_else(|| invalid("--until", s, hint))?;
    let name = name.trim();
    let q = name
        .strip_prefix("ttft_")
        .unwrap_or(name)
        .strip_prefix('p')
        .and_then(|p| p.parse::<f64>().ok())
        .filter(|p| *p > 0.0 && *p < 100.0)
        .ok_or_else(|| {
            invalid(
                "--until",
                s,
                if name.contains('_') {
                    "latency percentiles (p50 … p99.99) and time to first token (ttft_p99); \
                     ITL and TPOT are not supported by --until yet"
                } else {
                    hint
                },
            )
        })?;
    let b = bound
        .trim()
        .trim_start_matches('±')
        .trim_start_matches("+-")
        .strip_suffix('%')
        .and_then(|b| b.trim().parse::<f64>().ok())
        .filter(|b| *b > 0.0 && *b < 100.0)
        .ok_or_else(|| invalid("--until", s, hint))?;
    Ok((name.to_string(), q / 100.0, b / 100.0))
}
