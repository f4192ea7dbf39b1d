//! Strict parsers for the values users type: durations (`30s`, `1500ms`), rates
//! (`2.5k`, `30/m`) and sizes (`100`, `4k`).
//!
//! Every parser works on exact decimals (integer mantissa and scale), never on floats, so
//! `-R 0.1` and `-d 0.3s` mean exactly what was typed. A parser returns the reason a value
//! is wrong and an example of one that works (`BadValue`); the caller adds the flag's name.
//!
//! A leaf: it imports nothing from the crate but the shared error vocabulary. Used by `cli`
//! (run flags), `pacer` (`Rate::parse`), `serve` (its own flags), `stream` (SLO limits) and
//! `report::threshold` (latency limits).

use crate::error::BadValue;
use std::time::Duration;

/// An exact decimal as typed: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: u128,
    scale: u32,
}

/// Splits `s` into a leading unsigned decimal number and the rest (the unit).
fn split_number(s: &str) -> Option<(Decimal, &str)> {
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let (num, rest) = s.split_at(end);
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 18 {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mantissa = digits.parse::<u128>().ok()?;
    Some((
        Decimal {
            mantissa,
            scale: frac.len() as u32,
        },
        rest,
    ))
}

/// Parses a duration: a number and a unit (`us`, `ms`, `s`, `m`, `h`); a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, BadValue> {
    let hint = "expected a number with a unit, e.g. 30s, 1500ms, 2m, 1h or 200us";
    let t = s.trim();
    let (d, unit) = split_number(t).ok_or_else(|| BadValue::from(hint))?;
    let ns_per_unit: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(format!("unknown unit {unit:?}: {hint}").into()),
    };
    let ns = d
        .mantissa
        .checked_mul(ns_per_unit)
        .map(|v| v / 10u128.pow(d.scale))
        .filter(|&v| v <= u64::MAX as u128)
        .ok_or_else(|| BadValue(format!("too large: {hint}")))?;
    Ok(Duration::from_nanos(ns as u64))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `num / den` in lowest terms (`den` > 0).
pub fn reduce(num: u128, den: u128) -> (u128, u128) {
    assert!(den > 0, "a fraction's denominator is positive");
    let g = gcd(num, den).max(1);
    (num / g, den / g)
}

/// Parses a rate: a number with an optional `k` or `M` suffix and an optional per-unit
/// (`/s`, `/m`, `/h`), e.g. `1000`, `2.5k`, `0.5`, `30/m`.
///
/// Returns requests per second as a reduced fraction `(num, den)`; `pacer::Rate` wraps it.
pub fn parse_rate(s: &str) -> Result<(u128, u128), BadValue> {
    let hint = "expected requests per second as a number with an optional k or M suffix, \
                or per minute/hour, e.g. 1000, 2.5k, 0.5, 30/m";
    let t = s.trim();
    let (d, rest) = split_number(t).ok_or_else(|| BadValue::from(hint))?;
    let (suffix, per) = match rest.split_once('/') {
        Some((a, b)) => (a, b),
        None => (rest, "s"),
    };
    let mult: u128 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        _ => return Err(format!("unknown suffix {suffix:?}: {hint}").into()),
    };
    let per_secs: u128 = match per {
        "s" | "sec" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        _ => return Err(format!("unknown unit /{per}: {hint}").into()),
    };
    let (num, den) = reduce(d.mantissa * mult, 10u128.pow(d.scale) * per_secs);
    if num == 0 {
        return Err("must be greater than 0 (an open-loop test needs a rate)".into());
    }
    if num > 100_000_000 * den {
        return Err("more than 100M requests/s is beyond any generator".into());
    }
    Ok((num, den))
}

/// Parses a size in bytes: a whole number with an optional suffix `k`/`M` (10^3, 10^6) or
/// `Ki`/`Mi` (2^10, 2^20), each optionally followed by `B`.
pub fn parse_size(s: &str) -> Result<u64, BadValue> {
    let hint = "expected bytes as a whole number with an optional k, M, Ki or Mi suffix, e.g. 100, 4k, 1Mi";
    let t = s.trim();
    let (d, unit) = split_number(t).ok_or_else(|| BadValue::from(hint))?;
    let mult: u128 = match unit.trim_end_matches('B') {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?}: {hint}").into()),
    };
    let bytes = d.mantissa * mult;
    if !bytes.is_multiple_of(10u128.pow(d.scale)) {
        return Err(format!("not a whole number of bytes: {hint}").into());
    }
    u64::try_from(bytes / 10u128.pow(d.scale)).map_err(|_| BadValue(format!("too large: {hint}")))
}

/// A number with at most three decimals and no trailing zeros, as the reports and the
/// plan's description write durations and rates: 2.5, 30, 0.125.
pub fn trim_decimal(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Parses a wall-clock time: RFC 3339 (`2026-11-23T18:00:00Z`, `…T19:00:00.5+01:00`) or
/// Unix seconds (`1795449600`, `1795449600.25`).
pub fn parse_time(s: &str) -> Result<std::time::SystemTime, BadValue> {
    use std::time::UNIX_EPOCH;
    let hint = "expected RFC 3339 (e.g. 2026-11-23T18:00:00Z) or Unix seconds (e.g. 1795449600.5)";
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .ok_or_else(|| BadValue(format!("out of range: {hint}")));
    }
    let bad = || BadValue(hint.to_string());
    let num = |a: usize, b: usize| -> Result<i64, BadValue> {
        t.get(a..b)
            .filter(|x| x.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|x| x.parse().ok())
            .ok_or_else(bad)
    };
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    // Fractional seconds, then the offset.
    let mut rest = &t[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let f = &frac[..digits.min(9)];
        nanos = f.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - f.len() as u32);
        rest = &frac[digits..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let h: i64 = o[1..3].parse().map_err(|_| bad())?;
            let m: i64 = o[4..6].parse().map_err(|_| bad())?;
            let v = h * 3600 + m * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return Err(bad()),
    };
    // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let secs = u64::try_from(secs).map_err(|_| BadValue(format!("before 1970: {hint}")))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// A number of tokens per request, fixed or drawn (`--input-tokens`, `--output-tokens`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenCount {
    /// `512`.
    Fixed(u64),
    /// `512±64` (or `512+-64`), `uniform:256..1024`: every whole number from the low to the
    /// high end (both included) equally likely.
    Uniform(u64, u64),
    /// `normal:512,64`: mean and standard deviation, rounded, at least 1.
    Normal(f64, f64),
}

/// The tokens of request draws are limited to this (a 1 M-token prompt is a typo).
pub const MAX_TOKENS: u64 = 1_000_000;

impl TokenCount {
    /// Parses one of the forms above.
    pub fn parse(s: &str) -> Result<TokenCount, BadValue> {
        const EXAMPLE: &str = "expected tokens as 512, 512±64, uniform:256..1024 or normal:512,64";
        let whole = |t: &str| -> Result<u64, BadValue> {
            t.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_TOKENS).contains(n))
                .ok_or_else(|| BadValue::from(format!("{EXAMPLE} (whole numbers 1–{MAX_TOKENS})")))
        };
        let s = s.trim();
        let pm = s.split_once('±').or_else(|| s.split_once("+-"));
        let count = if let Some(r) = s.strip_prefix("uniform:") {
            let (a, b) = r.split_once("..").ok_or_else(|| BadValue::from(EXAMPLE))?;
            let (a, b) = (whole(a)?, whole(b)?);
            if a > b {
                return Err(BadValue::from(
                    "uniform:LOW..HIGH needs LOW ≤ HIGH, e.g. uniform:256..1024",
                ));
            }
            TokenCount::Uniform(a, b)
        } else if let Some(r) = s.strip_prefix("normal:") {
            let (m, sd) = r.split_once(',').ok_or_else(|| BadValue::from(EXAMPLE))?;
            let m = whole(m)? as f64;
            let sd: f64 = sd
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= m)
                .ok_or_else(|| {
                    BadValue::from("normal:MEAN,SD needs 0 ≤ SD ≤ MEAN, e.g. normal:512,64")
                })?;
            TokenCount::Normal(m, sd)
        } else if let Some((m, w)) = pm {
            let (m, w) = (
                whole(m)?,
                w.trim()
                    .parse::<u64>()
                    .map_err(|_| BadValue::from(EXAMPLE))?,
            );
            if w >= m {
                return Err(BadValue::from(
                    "N±W needs W < N (at least one token), e.g. 512±64",
                ));
            }
            TokenCount::Uniform(m - w, m + w)
        } else {
            TokenCount::Fixed(whole(s)?)
        };
        Ok(count)
    }

    /// The draw for a request whose random bits are `h` (a hash of the run's seed and the
    /// request's number: repeatable).
    pub fn draw(&self, h: u64) -> u64 {
        match *self {
            TokenCount::Fixed(n) => n,
            TokenCount::Uniform(a, b) => a + h % (b - a + 1),
            TokenCount::Normal(m, sd) => {
                // Box–Muller from the two halves of h.
                let u1 = ((h >> 32) as f64 + 0.5) / 4_294_967_296.0;
                let u2 = ((h & 0xffff_ffff) as f64 + 0.5) / 4_294_967_296.0;
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (m + sd * z).round().clamp(1.0, MAX_TOKENS as f64) as u64
            }
        }
    }

    /// The mean draw.
    pub fn mean(&self) -> f64 {
        match *self {
            TokenCount::Fixed(n) => n as f64,
            TokenCount::Uniform(a, b) => (a + b) as f64 / 2.0,
            TokenCount::Normal(m, _) => m,
        }
    }
}

impl std::fmt::Display for TokenCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenCount::Fixed(n) => write!(f, "{n}"),
            TokenCount::Uniform(a, b) => write!(f, "uniform:{a}..{b}"),
            TokenCount::Normal(m, sd) => write!(f, "normal:{m},{sd}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_fixed_and_drawn() {
        assert_eq!(TokenCount::parse("1024"), Ok(TokenCount::Fixed(1024)));
        assert_eq!(
            TokenCount::parse("512±64"),
            Ok(TokenCount::Uniform(448, 576))
        );
        assert_eq!(
            TokenCount::parse("512+-64"),
            Ok(TokenCount::Uniform(448, 576))
        );
        assert_eq!(
            TokenCount::parse("uniform:256..1024"),
            Ok(TokenCount::Uniform(256, 1024))
        );
        assert_eq!(
            TokenCount::parse("normal:512,64"),
            Ok(TokenCount::Normal(512.0, 64.0))
        );
        for bad in [
            "0",
            "-5",
            "ten",
            "64±64",
            "uniform:9..3",
            "normal:512",
            "normal:10,20",
            "2000000",
        ] {
            assert!(TokenCount::parse(bad).is_err(), "{bad}");
        }
        // Uniform draws cover both ends and nothing else; the normal's mean and spread are
        // the asked ones (100,000 draws: the mean within 4 standard errors).
        let u = TokenCount::Uniform(10, 12);
        let mut seen = [0u32; 3];
        let mut h = 1u64;
        let mut next = || {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h ^ (h >> 29)
        };
        for _ in 0..3000 {
            seen[(u.draw(next()) - 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (900..1100).contains(&c)), "{seen:?}");
        let n = TokenCount::Normal(512.0, 64.0);
        let draws: Vec<f64> = (0..100_000).map(|_| n.draw(next()) as f64).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let sd =
            (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64).sqrt();
        assert!(
            (mean - 512.0).abs() < 4.0 * 64.0 / 100_000f64.sqrt(),
            "{mean}"
        );
        assert!((sd - 64.0).abs() < 1.0, "{sd}");
    }

    #[test]
    fn durations() {
        let ok = [
            ("30s", Duration::from_secs(30)),
            ("30", Duration::from_secs(30)), // bare number: seconds, as wrk
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1500ms", Duration::from_millis(1500)),
            ("200us", Duration::from_micros(200)),
            ("0.3s", Duration::from_millis(300)), // exact, not 0.299999…
            ("1.5m", Duration::from_secs(90)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in ["10x", "", "s", "-1s", "1.2.3s", "1 s", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn rates() {
        // (input, requests per second as a reduced num/den)
        let ok = [
            ("1000", (1000, 1)),
            ("2.5k", (2500, 1)),
            ("0.5", (1, 2)),
            ("30/m", (1, 2)), // 30 per minute = 0.5/s
            ("3600/h", (1, 1)),
            ("1M", (1_000_000, 1)),
            ("0.1", (1, 10)), // exact, not 0.1000000000000000055…
        ];
        for (s, want) in ok {
            assert_eq!(parse_rate(s), Ok(want), "{s}");
        }
        for bad in ["0", "0.0", "10q", "", "k", "-5", "5/d", "1e3"] {
            assert!(parse_rate(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("4k"), Ok(4000));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1.5k"), Ok(1500));
        assert!(parse_size("1.5").is_err());
        assert!(parse_size("10x").is_err());
    }

    #[test]
    fn wall_clock_times() {
        use std::time::UNIX_EPOCH;
        let at = |s: &str| parse_time(s).unwrap().duration_since(UNIX_EPOCH).unwrap();
        // 2026-11-23T18:00:00Z: 20780 days after 1970-01-01, + 18 h.
        assert_eq!(
            at("2026-11-23T18:00:00Z"),
            Duration::from_secs(20_780 * 86_400 + 18 * 3600)
        );
        assert_eq!(at("2026-11-23T19:00:00+01:00"), at("2026-11-23T18:00:00Z"));
        assert_eq!(
            at("2026-11-23T18:00:00.25Z"),
            at("2026-11-23T18:00:00Z") + Duration::from_millis(250)
        );
        assert_eq!(at("2000-03-01T00:00:00Z"), Duration::from_secs(951_868_800));
        assert_eq!(at("1795449600.5"), Duration::from_millis(1_795_449_600_500));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-11-23T18:00:00",
            "2026-11-23 18:00Z",
            "-5",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
