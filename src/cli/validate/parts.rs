//! The parts of a run's plan: its schedule (rate or stages, duration, `--until`, arrivals,
//! shard and start), the target and mix, connections and threads, body and script,
//! timeouts, logs, the tokenizer; and the thresholds a plan cannot judge.

use super::parse::{parse_shard, parse_until};
use super::*;

/// What `--stages`, `-R`, `-d`, `-n`, `--until`, `--arrival`, `--seed`, `--shard`,
/// `--start-at` and `--warmup` make of the run's schedule.
pub(super) struct Schedule {
    pub(super) stages: Vec<crate::pacer::shape::Stage>,
    pub(super) given_rate: Option<Rate>,
    pub(super) rate: Rate,
    pub(super) duration: Duration,
    pub(super) min_duration: Option<Duration>,
    pub(super) until: Vec<(String, f64, f64)>,
    pub(super) arrival: Arrival,
    pub(super) seed: u64,
    pub(super) shard: u64,
    pub(super) shards: u64,
    pub(super) start_at: Option<std::time::SystemTime>,
    pub(super) warmup: Option<Duration>,
}

impl RunArgs {
    /// The targets file's requests (or none), and the target: the file's first origin, else
    /// the URL.
    pub(super) fn mix_and_target(
        &self,
    ) -> Result<(Vec<crate::mix::RequestSpec>, Target), ConfigError> {
        // A targets file names the URLs itself; its first target's origin is the target.
        let mix = match &self.targets {
            Some(path) => {
                if let Some(u) = &self.url {
                    return Err(invalid(
                        "URL",
                        u,
                        "with --targets the URLs come from the file: leave the URL out",
                    ));
                }
                if self.script.is_some() || self.prompts.is_some() {
                    return Err(ConfigError::Missing(
                        "--targets builds the requests: it does not combine with -s/--script or \
                     --prompts"
                            .into(),
                    ));
                }
                read_targets(path)?
            }
            None => Vec::new(),
        };
        let first_url = mix.first().map(|t| t.url.clone());
        let url = first_url
            .as_deref()
            .or(self.url.as_deref())
            .ok_or_else(|| {
                ConfigError::Missing(
                    "missing target URL, e.g. ratebench -R1000 -c100 -d30s http://127.0.0.1:8080/ \
             (or try `ratebench demo`, or --targets FILE)"
                        .into(),
                )
            })?;
        let target = Target::parse(url).map_err(|e| match mix.first() {
            Some(t) => invalid("--targets", &t.origin, e.to_string()),
            None => e,
        })?;
        Ok((mix, target))
    }

    /// The schedule: rate or stages, duration, precision goals, arrivals, shard and start.
    pub(super) fn schedule(&self) -> Result<Schedule, ConfigError> {
        let stages = match &self.stages {
            Some(s) => parse_stages(s).map_err(|r| invalid("--stages", s, r))?,
            None => Vec::new(),
        };
        let given_rate =
            match (&self.rate, stages.is_empty()) {
                (Some(r), _) => Some(Rate::parse(r).map_err(|e| invalid("-R/--rate", r, e))?),
                (None, false) => None, // stages ramp from 0
                (None, true) => return Err(ConfigError::Missing(
                    "-R/--rate is required: ratebench sends a fixed rate whatever the server does \
                     (open loop), e.g. -R 1000 (or a ramp: --stages 30s:100,1m:100)"
                        .into(),
                )),
            };
        let duration = match (&self.duration, stages.is_empty()) {
            (Some(d), true) => {
                let duration = parse_duration(d).map_err(|r| invalid("-d/--duration", d, r))?;
                if duration.is_zero() {
                    return Err(invalid("-d/--duration", d, "must be longer than 0"));
                }
                duration
            }
            (None, true) => Duration::from_secs(10),
            (None, false) => stages.iter().map(|s| s.duration).sum(),
            (Some(d), false) => {
                return Err(invalid(
                    "-d/--duration",
                    d,
                    "with --stages the duration is the sum of the stages: leave -d out",
                ))
            }
        };
        let duration = match &self.requests {
            None => duration,
            Some(n) => self.duration_of_requests(n, given_rate, &stages)?,
        };
        let until = self
            .until
            .iter()
            .map(|u| parse_until(u))
            .collect::<Result<Vec<_>, _>>()?;
        let (duration, min_duration) = if until.is_empty() {
            if let Some(m) = &self.max_duration {
                return Err(invalid(
                    "--max-duration",
                    m,
                    "is the limit of --until: add --until 'p99:±2%' (or leave it out)",
                ));
            }
            (duration, None)
        } else {
            if !stages.is_empty() {
                return Err(ConfigError::Missing(
                    "--until runs a constant rate past -d until precise: it cannot stretch \
                     --stages; leave one of them out"
                        .into(),
                ));
            }
            let max = match &self.max_duration {
                Some(m) => parse_duration(m).map_err(|r| invalid("--max-duration", m, r))?,
                None => duration * 10,
            };
            if max < duration {
                return Err(invalid(
                    "--max-duration",
                    self.max_duration.as_deref().unwrap_or_default(),
                    "must be at least -d (the least the load runs)",
                ));
            }
            (max, Some(duration))
        };
        let arrival =
            Arrival::parse(&self.arrival).map_err(|r| invalid("--arrival", &self.arrival, r))?;
        let seed = match &self.seed {
            Some(s) => s.trim().parse::<u64>().map_err(|_| {
                invalid(
                    "--seed",
                    s,
                    "expected a whole number from 0 to 18446744073709551615",
                )
            })?,
            None => random_seed(),
        };
        let (shard, shards) = match &self.shard {
            Some(s) => parse_shard(s)?,
            None => (0, 1),
        };
        let start_at = match &self.start_at {
            Some(t) => {
                let at = parse_time(t).map_err(|r| invalid("--start-at", t, r))?;
                let now = std::time::SystemTime::now();
                if at < now {
                    return Err(invalid(
                        "--start-at",
                        t,
                        "is in the past: give every shard the same time a little ahead, e.g. \
                         $(date -u -d '+30 seconds' +%Y-%m-%dT%H:%M:%SZ)",
                    ));
                }
                if at > now + Duration::from_secs(86_400) {
                    return Err(invalid("--start-at", t, "is more than a day ahead"));
                }
                Some(at)
            }
            None => None,
        };
        let warmup = match &self.warmup {
            Some(w) => {
                let d = parse_duration(w).map_err(|r| invalid("--warmup", w, r))?;
                (!d.is_zero()).then_some(d)
            }
            None => None,
        };
        // The rate a constant-rate run holds, or the average of a ramp (for the report's
        // "target rate"; the schedule itself follows the profile).
        let profile = Profile::new(
            given_rate.map_or(0.0, |r| r.as_f64()),
            if stages.is_empty() { &[] } else { &stages },
        );
        let rate = match (given_rate, stages.is_empty()) {
            (Some(r), true) => r,
            _ => Rate::new(
                (profile.total() / duration.as_secs_f64() * 1e6).round() as u128,
                1_000_000,
            ),
        };
        if rate.is_zero() {
            return Err(invalid(
                "--stages",
                self.stages.as_deref().unwrap_or_default(),
                "these stages schedule no request at all",
            ));
        }
        Ok(Schedule {
            stages,
            given_rate,
            rate,
            duration,
            min_duration,
            until,
            arrival,
            seed,
            shard,
            shards,
            start_at,
            warmup,
        })
    }

    /// `-c`, and `-t` (at most `-c`; by default the cores, at most `-c`).
    pub(super) fn connections_and_threads(&self) -> Result<(usize, usize), ConfigError> {
        let connections = parse_count("-c/--connections", &self.connections)?;
        let threads = match &self.threads {
            Some(t) => {
                let n = parse_count("-t/--threads", t)?;
                if n > connections {
                    return Err(invalid(
                        "-t/--threads",
                        t,
                        format!(
                            "more threads than connections ({connections}); each thread needs \
                             at least one connection: use -t {connections} or raise -c"
                        ),
                    ));
                }
                n
            }
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(connections),
        };
        Ok((connections, threads))
    }

    /// `-s`: the script, read, with the request it starts from.
    pub(super) fn script_base(
        &self,
        target: &Target,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: &Bytes,
    ) -> Result<Option<ScriptBase>, ConfigError> {
        Ok(match &self.script {
            Some(path) => Some(ScriptBase {
                path: path.clone(),
                source: std::sync::Arc::new(std::fs::read(path).map_err(|e| {
                    invalid(
                        "-s/--script",
                        &path.display().to_string(),
                        format!("cannot read: {e}"),
                    )
                })?),
                args: self.script_args.clone(),
                target: WrkTarget {
                    url: target.url.clone(),
                    tls: target.tls,
                    host: target.host.clone(),
                    port: target.port,
                    authority: target.authority.clone(),
                    path: target.path.clone(),
                },
                method: method.to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: (!body.is_empty()).then(|| body.to_vec()),
            }),
            None if !self.script_args.is_empty() => {
                return Err(ConfigError::Missing(
                    "arguments after -- are for a script's init(args): add -s FILE".into(),
                ))
            }
            None => None,
        })
    }

    /// `--body` or `--body-file` (empty without either).
    pub(super) fn body(&self) -> Result<Bytes, ConfigError> {
        Ok(match (&self.body, &self.body_file) {
            (Some(b), _) => Bytes::from(b.clone()),
            (None, Some(path)) => std::fs::read(path).map(Bytes::from).map_err(|e| {
                invalid(
                    "--body-file",
                    &path.display().to_string(),
                    format!("cannot read: {e}"),
                )
            })?,
            (None, None) => Bytes::new(),
        })
    }

    /// `--requests-log`: a file that can be written.
    pub(super) fn requests_log(&self) -> Result<Option<PathBuf>, ConfigError> {
        Ok(match &self.requests_log {
            Some(p) => {
                check_writable("--requests-log", p)?;
                Some(p.clone())
            }
            None => None,
        })
    }

    /// `--group-by-header`: a header name.
    pub(super) fn group_by(&self) -> Result<Option<HeaderName>, ConfigError> {
        Ok(match &self.group_by_header {
            Some(h) => Some(
                HeaderName::from_bytes(h.trim().as_bytes())
                    .map_err(|_| invalid("--group-by-header", h, "not a header name"))?,
            ),
            None => None,
        })
    }

    /// `--tokenizer` (`none`: none). Unnamed, the default for a run that can ask a model
    /// anything (`may_ask`: a body, prompts, targets, a script); a run of bare GETs does not
    /// load a vocabulary (~44 ms of CPU, which concurrent runs on one machine would feel)
    /// and counts a stream without usage by its content events, as the report says.
    pub(super) fn tokenizer(
        &self,
        may_ask: bool,
    ) -> Result<Option<crate::tokens::Tokenizer>, ConfigError> {
        Ok(match self.tokenizer.as_deref().map(str::trim) {
            Some("none") => None,
            Some(name) => Some(
                crate::tokens::Tokenizer::named(name)
                    .map_err(|r| invalid("--tokenizer", name, r))?,
            ),
            None if may_ask => Some(crate::tokens::Tokenizer::default()),
            None => None,
        })
    }

    /// At most `MAX_TAGS` tags are kept apart.
    pub(super) fn check_tag_count(&self, tags: &[String]) -> Result<(), ConfigError> {
        if tags.len() > MAX_TAGS {
            return Err(invalid(
                "--targets",
                &self
                    .targets
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                format!(
                    "{} distinct tags; at most {MAX_TAGS} are kept apart (tag targets by kind, \
                     not one tag each)",
                    tags.len()
                ),
            ));
        }
        Ok(())
    }

    /// `--connect-timeout` (default: `--timeout`).
    pub(super) fn connect_timeout(&self, timeout: Duration) -> Result<Duration, ConfigError> {
        Ok(match &self.connect_timeout {
            Some(t) => {
                let d = parse_duration(t).map_err(|r| invalid("--connect-timeout", t, r))?;
                if d.is_zero() {
                    return Err(invalid("--connect-timeout", t, "must be longer than 0"));
                }
                d
            }
            None => timeout,
        })
    }

    /// `--streams` (HTTP/2 only; default 100).
    pub(super) fn streams(&self) -> Result<usize, ConfigError> {
        Ok(match &self.streams {
            Some(_) if !self.http2 => {
                return Err(ConfigError::Missing(
                    "--streams is for HTTP/2 connections: add --http2 (an HTTP/1.1 \
                         connection carries one request at a time; raise -c instead)"
                        .into(),
                ))
            }
            Some(n) => parse_count("--streams", n)?,
            None => 100,
        })
    }

    /// `--precision` (None: exact pacing).
    pub(super) fn io_uring(&self) -> Result<IoUringMode, ConfigError> {
        match self.io_uring.as_str() {
            "auto" => Ok(IoUringMode::Auto),
            "on" => Ok(IoUringMode::On),
            "off" => Ok(IoUringMode::Off),
            other => Err(invalid("--io-uring", other, "one of auto, on, off")),
        }
    }

    pub(super) fn precision(&self) -> Result<Option<Duration>, ConfigError> {
        Ok(match &self.precision {
            Some(p) => {
                let d = parse_duration(p).map_err(|r| invalid("--precision", p, r))?;
                if d.is_zero() || d > Duration::from_secs(1) {
                    return Err(invalid(
                        "--precision",
                        p,
                        "from just above 0 to 1s, e.g. 1ms (leave it out for exact pacing)",
                    ));
                }
                Some(d)
            }
            None => None,
        })
    }

    /// `--hdr-log`: a writable file, or `-` when stdout is not taken by `--json -`.
    pub(super) fn hdr_log(&self) -> Result<Option<PathBuf>, ConfigError> {
        Ok(match &self.hdr_log {
            Some(p) if p.as_os_str() == "-" => {
                if self.output.json.as_deref() == Some(Path::new("-")) {
                    return Err(ConfigError::Missing(
                        "--hdr-log - and --json - would both write to stdout: send one of \
                             them to a file"
                            .into(),
                    ));
                }
                Some(p.clone())
            }
            Some(p) => {
                check_writable("--hdr-log", p)?;
                Some(p.clone())
            }
            None => None,
        })
    }
}

/// Thresholds the plan cannot judge are refused before traffic.
pub(super) fn check_thresholds(
    plan: &Plan,
    thresholds: &[Threshold],
    tags: &[String],
) -> Result<(), ConfigError> {
    // Goodput is the share that met every --slo: without one it would be 0 % (or, with
    // goodput<…, pass) whatever the server did.
    if plan.slos.is_empty() {
        if let Some(t) = thresholds
            .iter()
            .find(|t| t.metric == crate::report::threshold::Metric::Goodput)
        {
            return Err(invalid(
                "--threshold",
                &t.expr,
                "goodput is the share of requests that met every --slo: add one, e.g. \
                 --slo ttft<500ms",
            ));
        }
    }
    // A threshold on a tag the run does not have is a typo (a script's tags are only
    // known as it runs).
    if plan.script.is_none() {
        for t in thresholds {
            if let Some(tag) = &t.tag {
                if !tags.contains(tag) {
                    return Err(invalid(
                        "--threshold",
                        &t.expr,
                        format!("no requests are tagged {tag:?}; the tags are {tags:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}
