//! `ratebench serve`'s flags, validated into its configuration.

use super::*;
use crate::cli::args::ServeArgs;

impl ServeArgs {
    /// Checks every value and builds the server configuration.
    pub fn validate(&self) -> Result<ServeConfig, ConfigError> {
        let addr = self.addr.parse().map_err(|_| {
            invalid(
                "--addr",
                &self.addr,
                "expected IP:PORT, e.g. 127.0.0.1:8080",
            )
        })?;
        let (delay, delay_max) = parse_range("--delay", &self.delay, parse_duration)?;
        let delay_max = (delay_max > delay).then_some(delay_max);
        let body_size = parse_size(&self.body_size)
            .map_err(|r| invalid("--body-size", &self.body_size, r))?
            as usize;
        let every = match &self.stall_every {
            Some(p) => {
                let d = parse_duration(p).map_err(|r| invalid("--stall-every", p, r))?;
                if d.is_zero() {
                    return Err(invalid("--stall-every", p, "must be longer than 0"));
                }
                Some(d)
            }
            None => None,
        };
        let stall = match &self.stall {
            Some(s) => {
                let hint = "expected FOR@AT, e.g. 1s@5s (5 s after start, hold responses for 1 s)";
                let (len, at) = s
                    .split_once('@')
                    .ok_or_else(|| invalid("--stall", s, hint))?;
                let length = parse_duration(len).map_err(|r| invalid("--stall", s, r))?;
                let at = parse_duration(at).map_err(|r| invalid("--stall", s, r))?;
                if every.is_some_and(|e| e <= length) {
                    return Err(invalid(
                        "--stall-every",
                        self.stall_every.as_deref().unwrap_or_default(),
                        "must be longer than the stall itself",
                    ));
                }
                let chance_ppm = match &self.stall_chance {
                    Some(c) if every.is_none() => {
                        return Err(ConfigError::Missing(format!(
                            "--stall-chance {c} needs --stall-every: the chance is per period"
                        )))
                    }
                    Some(c) => (parse_share("--stall-chance", c)? * 1e6).round() as u32,
                    None => 1_000_000,
                };
                Some(Stall {
                    length,
                    at,
                    every,
                    chance_ppm,
                })
            }
            None if every.is_some() => {
                return Err(ConfigError::Missing(
                    "--stall-every needs --stall FOR@AT, e.g. --stall 1s@5s --stall-every 10s"
                        .into(),
                ))
            }
            None => None,
        };
        let slow = match &self.slow {
            Some(s) => {
                let hint = "expected FACTOR@AT+FOR, e.g. 10@30s+15s (the --delay ten times longer from 30 s to 45 s)";
                let (factor, window) = s
                    .split_once('@')
                    .ok_or_else(|| invalid("--slow", s, hint))?;
                let (at, length) = window
                    .split_once('+')
                    .ok_or_else(|| invalid("--slow", s, hint))?;
                let factor: f64 = factor
                    .trim()
                    .parse()
                    .ok()
                    .filter(|f: &f64| f.is_finite() && *f > 0.0)
                    .ok_or_else(|| invalid("--slow", s, hint))?;
                if delay.is_zero() && delay_max.is_none() {
                    return Err(ConfigError::Missing(
                        "--slow multiplies --delay: give a service delay, e.g. --delay 1ms --slow 10@30s+15s".into(),
                    ));
                }
                Some(Slow {
                    factor,
                    at: parse_duration(at).map_err(|r| invalid("--slow", s, r))?,
                    length: parse_duration(length).map_err(|r| invalid("--slow", s, r))?,
                })
            }
            None => None,
        };
        let threads = parse_count("--threads", &self.threads)?;
        let llm = LlmConfig {
            ttft: parse_range("--ttft", &self.ttft, parse_duration)?,
            token_interval: parse_range("--token-interval", &self.token_interval, parse_duration)?,
            tokens: parse_range("--tokens", &self.tokens, |t| {
                t.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        BadValue::from("expected a whole number of tokens ≥ 1, e.g. 50 or 20..80")
                    })
            })?,
            tokenizer: crate::tokens::Tokenizer::named(&self.tokenizer)
                .map_err(|r| invalid("--tokenizer", &self.tokenizer, r))?,
            prefill_rate: match &self.prefill_rate {
                None => None,
                Some(r) => Some(
                    r.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            invalid(
                                "--prefill-rate",
                                r,
                                "expected prompt tokens per second, a whole number ≥ 1, e.g. 5000",
                            )
                        })?,
                ),
            },
            decode_slowdown_ppm: match &self.decode_slowdown {
                None => 0,
                Some(p) => p
                    .trim()
                    .strip_suffix('%')
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && (0.0..=1000.0).contains(v))
                    .map(|v| (v * 10_000.0).round() as u64)
                    .ok_or_else(|| {
                        invalid(
                            "--decode-slowdown",
                            p,
                            "a share per answer in flight, 0–1000 %, e.g. 1%",
                        )
                    })?,
            },
            max_concurrency: match &self.max_concurrency {
                None if self.reject_when_full => {
                    return Err(ConfigError::Missing(
                        "--reject-when-full needs --max-concurrency N".into(),
                    ))
                }
                None => None,
                Some(n) => Some(parse_count("--max-concurrency", n)?),
            },
            reject_when_full: self.reject_when_full,
        };
        let statuses = self
            .statuses
            .iter()
            .map(|s| parse_status(s))
            .collect::<Result<Vec<_>, _>>()?;
        if statuses.iter().map(|(_, p)| p).sum::<f64>() > 1.0 + 1e-9 {
            return Err(invalid(
                "--status",
                &self.statuses.join(" "),
                "the shares add up to more than 100%",
            ));
        }
        Ok(ServeConfig {
            addr,
            delay,
            delay_max,
            body_size,
            stall,
            slow,
            tls: self.tls || self.cert.is_some() || self.client_ca.is_some(),
            cert: match (&self.cert, &self.key) {
                (Some(c), Some(k)) => {
                    let show = |p: &Path| p.display().to_string();
                    read_certs(c).map_err(|r| invalid("--cert", &show(c), r))?;
                    read_key(k).map_err(|r| invalid("--key", &show(k), r))?;
                    Some((c.clone(), k.clone()))
                }
                _ => None,
            },
            client_ca: match &self.client_ca {
                Some(p) => {
                    read_certs(p)
                        .map_err(|r| invalid("--client-ca", &p.display().to_string(), r))?;
                    Some(p.clone())
                }
                None => None,
            },
            threads,
            llm,
            statuses,
            http2: self.http2,
            max_streams: match &self.max_streams {
                Some(_) if !self.http2 => {
                    return Err(ConfigError::Missing(
                        "--max-streams is an HTTP/2 setting: add --http2".into(),
                    ))
                }
                Some(m) => Some(
                    u32::try_from(parse_count("--max-streams", m)?)
                        .map_err(|_| invalid("--max-streams", m, "at most 4294967295"))?,
                ),
                None => None,
            },
            goaway_after: match &self.goaway_after {
                Some(n) => Some(parse_count("--goaway-after", n)? as u64),
                None => None,
            },
            reset: match &self.reset {
                Some(r) => parse_share("--reset", r)?,
                None => 0.0,
            },
            key_limit: match &self.key_limit {
                Some(l) => Some(parse_limit("--key-limit", l)?),
                None => None,
            },
            key_token_limit: match &self.key_token_limit {
                Some(l) => Some(parse_limit("--key-token-limit", l)?),
                None => None,
            },
            upstreams: match &self.upstreams {
                Some(u) => {
                    let list: Vec<String> = u
                        .split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect();
                    if list.is_empty() || list.iter().any(|x| HeaderValue::from_str(x).is_err()) {
                        return Err(invalid(
                            "--upstreams",
                            u,
                            "expected names separated by commas, e.g. a,b",
                        ));
                    }
                    list
                }
                None => Vec::new(),
            },
        })
    }
}
