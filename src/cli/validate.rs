//! The command line, validated: each flag's string parsed strictly into the engine's `Plan`
//! (and, beside it, where reports go and which spectra to print), `serve`'s config, and
//! the outputs of `ratebench report`. The first bad value is the error, before any traffic.

use super::args::{OutputArgs, RunArgs, ServeArgs, SweepArgs};
use crate::engine::tls::{read_certs, read_key, TlsSettings};
use crate::engine::{Plan, Target};
use crate::error::{invalid, BadValue, ConfigError};
use crate::mix::{parse_model, read_targets, MAX_TAGS};
use crate::pacer::shape::parse_stages;
use crate::pacer::{Arrival, Profile, Rate};
use crate::prompts::{read_prompts, Api, PromptSource, Prompts, Synthetic};
use crate::report::text::Spectra;
use crate::report::threshold::Threshold;
use crate::script::{ScriptBase, WrkTarget};
use crate::serve::config::{
    parse_limit, parse_range, parse_share, parse_status, LlmConfig, ServeConfig, Slow, Stall,
};
use crate::stream::{Slo, TokenRule};
use crate::units::TokenCount;
use crate::units::{parse_duration, parse_size, parse_time};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A validated sweep: each step's command (its rate replaced step by step) and the climb.
#[derive(Debug, Clone)]
pub struct SweepCommand {
    /// Each step's plan and outputs; `outputs.json`/`html` are the sweep's own files.
    pub base: RunCommand,
    /// R0 and R1, requests/s.
    pub from: f64,
    /// R1.
    pub to: f64,
    /// Steps of the climb.
    pub steps: usize,
    /// Bisections after it.
    pub refine: usize,
}

impl SweepArgs {
    /// Checks the sweep's own flags and each step's.
    pub fn validate(&self) -> Result<SweepCommand, ConfigError> {
        if let Some(r) = &self.run.rate {
            return Err(invalid(
                "-R/--rate",
                r,
                "a sweep sets each step's rate itself: use --from and --to",
            ));
        }
        if let Some(n) = &self.run.requests {
            return Err(invalid(
                "-n/--requests",
                n,
                "a sweep's steps each last -d at their own rate: give -d",
            ));
        }
        let from = Rate::parse(&self.from).map_err(|r| invalid("--from", &self.from, r))?;
        let to = Rate::parse(&self.to).map_err(|r| invalid("--to", &self.to, r))?;
        if from.as_f64() >= to.as_f64() {
            return Err(invalid(
                "--to",
                &self.to,
                format!(
                    "must be above --from ({}), e.g. --from 100 --to 2k",
                    self.from
                ),
            ));
        }
        let steps = parse_count("--steps", &self.steps)?;
        if steps < 2 {
            return Err(invalid("--steps", &self.steps, "at least 2 (R0 and R1)"));
        }
        let refine = match self.refine.trim().parse::<usize>() {
            Ok(k) if k <= 20 => k,
            _ => {
                return Err(invalid(
                    "--refine",
                    &self.refine,
                    "a whole number from 0 to 20",
                ))
            }
        };
        if self.run.output.thresholds.is_empty() {
            return Err(ConfigError::Missing(
                "a sweep judges each step by its thresholds: add at least one, e.g. \
                 --threshold 'p99<250ms'"
                    .into(),
            ));
        }
        if self.run.stages.is_some() || self.run.warmup.is_some() {
            return Err(ConfigError::Missing(
                "each sweep step is a constant rate: --stages and --warmup do not apply".into(),
            ));
        }
        if self.run.shard.is_some() || self.run.start_at.is_some() {
            return Err(ConfigError::Missing(
                "a sweep runs its steps one after another on one machine: --shard and \
                 --start-at do not apply"
                    .into(),
            ));
        }
        // What a sweep would silently not write (each step would truncate the file of the
        // one before): said before any traffic.
        let o = &self.run.output;
        let single_run_only = [
            (o.csv.is_some(), "--csv"),
            (o.csv_timeseries.is_some(), "--csv-timeseries"),
            (o.junit.is_some(), "--junit"),
            (self.run.hdr_log.is_some(), "--hdr-log"),
            (self.run.requests_log.is_some(), "--requests-log"),
            (self.run.metrics_addr.is_some(), "--metrics-addr"),
        ];
        if let Some((_, flag)) = single_run_only.iter().find(|(on, _)| *on) {
            return Err(ConfigError::Missing(format!(
                "{flag} is for a single run: a sweep writes its steps' table with --json and \
                 --html (run the rate you want to look at on its own for {flag})"
            )));
        }
        let mut run = self.run.clone();
        run.rate = Some(self.from.clone());
        Ok(SweepCommand {
            base: run.validate()?,
            from: from.as_f64(),
            to: to.as_f64(),
            steps,
            refine,
        })
    }
}

/// A validated load test: the engine's plan, and what the app does with its results.
#[derive(Debug, Clone)]
pub struct RunCommand {
    /// What the engine runs.
    pub plan: Plan,
    /// Report files and thresholds.
    pub outputs: Outputs,
    /// `-L`/`-U`.
    pub spectra: Spectra,
    /// Where to write the interval log.
    pub hdr_log: Option<PathBuf>,
    /// Where to serve live Prometheus metrics.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `--no-tui`: the one-line progress even on a terminal.
    pub no_tui: bool,
}

/// Validated report outputs and thresholds.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Percentile CSV.
    pub csv: Option<PathBuf>,
    /// Per-second CSV.
    pub csv_timeseries: Option<PathBuf>,
    /// JSON summary (`-` is stdout).
    pub json: Option<PathBuf>,
    /// HTML report.
    pub html: Option<PathBuf>,
    /// Thresholds as JUnit XML.
    pub junit: Option<PathBuf>,
    /// Conditions that must hold.
    pub thresholds: Vec<Threshold>,
}

impl Outputs {
    /// Whether the JSON summary goes to stdout (so the text report must not).
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref() == Some(Path::new("-"))
    }
}

impl OutputArgs {
    /// Checks the thresholds' grammar and that each output file can be created, so a typo
    /// or an unwritable path fails before any traffic, not after a long run.
    pub fn validate(&self) -> Result<Outputs, ConfigError> {
        let thresholds = self
            .thresholds
            .iter()
            .map(|t| Threshold::parse(t).map_err(|r| invalid("--threshold", t, r)))
            .collect::<Result<Vec<_>, _>>()?;
        for (flag, path) in [
            ("--csv", &self.csv),
            ("--csv-timeseries", &self.csv_timeseries),
            ("--json", &self.json),
            ("--html", &self.html),
            ("--junit", &self.junit),
        ] {
            if let Some(p) = path {
                if p.as_os_str() != "-" || flag != "--json" {
                    check_writable(flag, p)?;
                }
            }
        }
        Ok(Outputs {
            csv: self.csv.clone(),
            csv_timeseries: self.csv_timeseries.clone(),
            json: self.json.clone(),
            html: self.html.clone(),
            junit: self.junit.clone(),
            thresholds,
        })
    }
}

/// Fails unless `path` can be opened for writing.
///
/// A file that did not exist is removed again, so a run that fails before traffic leaves no
/// empty files behind for whatever reads them next.
pub fn check_writable(flag: &'static str, path: &Path) -> Result<(), ConfigError> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
        })
        .map_err(|e| {
            invalid(
                flag,
                &path.display().to_string(),
                format!("cannot write there: {e}"),
            )
        })
}

/// A seed for random arrivals when none is given: from the clock and the process id, and
/// printed in the report so the run can be repeated with `--seed`.
impl RunArgs {
    /// The LLM flags make sense together: prompts read or made (not both), with a model,
    /// and the flags that shape them only with them.
    fn check_llm_flags(&self) -> Result<(), ConfigError> {
        let missing = |m: &str| Err(ConfigError::Missing(m.into()));
        let made = self.input_tokens.is_some();
        let any = made || self.prompts.is_some();
        if made && self.prompts.is_some() {
            return missing(
                "--input-tokens makes prompts and --prompts reads them: use one of the two",
            );
        }
        if any && self.models.is_empty() {
            return missing("--prompts and --input-tokens need at least one --model NAME[=WEIGHT]");
        }
        if !any {
            let stray = [
                (!self.models.is_empty(), "--model"),
                (self.no_stream, "--no-stream"),
                (self.output_tokens.is_some(), "--output-tokens"),
                (self.exact_output, "--exact-output"),
            ];
            if let Some((_, flag)) = stray.iter().find(|(on, _)| *on) {
                return Err(ConfigError::Missing(format!(
                    "{flag} is for LLM runs: add --prompts FILE (JSONL or ShareGPT) or \
                     --input-tokens N (prompts made to a length), with --model"
                )));
            }
        }
        if self.shared_prefix_tokens.is_some() && !made {
            return missing("--shared-prefix-tokens is for prompts made by --input-tokens");
        }
        if any && self.script.is_some() {
            return missing(
                "--prompts and --input-tokens build the requests: they do not combine with \
                 -s/--script",
            );
        }
        let api = self.api()?;
        if self.exact_output && !api.exact_output() {
            return Err(invalid(
                "--exact-output",
                api.name(),
                "min_tokens and ignore_eos are for openai-chat and openai-completions \
                 (vLLM, SGLang, TGI); this API has no way to ask for an exact length",
            ));
        }
        if made && self.tokenizer.as_deref().map(str::trim) == Some("none") {
            return missing("--input-tokens sizes prompts by a tokenizer: name one, not none");
        }
        Ok(())
    }

    /// `-n N`: the window in which a constant-rate schedule has exactly N due times — up to
    /// the N-th's (excluded), `Rate::due_ns(N)`.
    fn duration_of_requests(
        &self,
        n: &str,
        rate: Option<Rate>,
        stages: &[crate::pacer::Stage],
    ) -> Result<Duration, ConfigError> {
        let flag = "-n/--requests";
        let count = parse_count(flag, n)? as u64;
        if let Some(d) = &self.duration {
            return Err(invalid(
                flag,
                n,
                format!("-n and -d ({d}) both say how long: give one"),
            ));
        }
        if !stages.is_empty() || !self.until.is_empty() {
            return Err(invalid(
                flag,
                n,
                "-n is for a constant rate: leave out --stages and --until",
            ));
        }
        if self.arrival.trim() != "constant" {
            return Err(invalid(
                flag,
                n,
                "random arrivals send a random number of requests in a window: give -d (or \
                 --arrival constant)",
            ));
        }
        let rate = rate.expect("-R is required without --stages");
        let ns = u64::try_from(rate.due_ns(count)).unwrap_or(u64::MAX);
        Ok(Duration::from_nanos(ns))
    }

    /// `--api`.
    fn api(&self) -> Result<Api, ConfigError> {
        Api::parse(&self.api).map_err(|r| invalid("--api", &self.api, r))
    }

    /// `--sse-token`, else the `--api`'s rule.
    fn token_rule(&self) -> Result<TokenRule, ConfigError> {
        match &self.sse_token {
            Some(r) => TokenRule::parse(r).map_err(|e| invalid("--sse-token", r, e)),
            None => Ok(match self.api()? {
                Api::OpenAiChat | Api::OpenAiCompletions => TokenRule::OpenAi,
                Api::OpenAiResponses => TokenRule::Responses,
                Api::AnthropicMessages => TokenRule::Anthropic,
            }),
        }
    }

    /// The headers `--api` and `--api-key` add to `-H`'s (which win).
    fn api_headers(&self, headers: &mut Vec<(HeaderName, HeaderValue)>) -> Result<(), ConfigError> {
        let api = self.api()?;
        let mut add = |name: &'static str, value: String, flag: &'static str| {
            let name = HeaderName::from_static(name);
            if headers.iter().any(|(n, _)| *n == name) {
                return Ok(());
            }
            let v = HeaderValue::from_str(&value)
                .map_err(|_| invalid(flag, &value, "not a valid header value"))?;
            headers.push((name, v));
            Ok::<(), ConfigError>(())
        };
        if api == Api::AnthropicMessages {
            add(
                "anthropic-version",
                self.anthropic_version.trim().to_string(),
                "--anthropic-version",
            )?;
        }
        if let Some(k) = &self.api_key {
            match api {
                Api::AnthropicMessages => add("x-api-key", k.trim().to_string(), "--api-key")?,
                _ => add("authorization", format!("Bearer {}", k.trim()), "--api-key")?,
            }
        }
        Ok(())
    }

    /// The prompts of an LLM run (`check_llm_flags` passed), counted or made by the plan's
    /// tokenizer: a file's are kept up to the most requests the run can send.
    fn prompts_of(&self, plan: &Plan) -> Result<Prompts, ConfigError> {
        let models = self
            .models
            .iter()
            .map(|m| parse_model(m))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, (m, _)) in models.iter().enumerate() {
            if models[..i].iter().any(|(n, _)| n == m) {
                return Err(invalid("--model", m, "named twice"));
            }
        }
        let tokens =
            |flag: &'static str, v: &str| TokenCount::parse(v).map_err(|r| invalid(flag, v, r));
        let output = match &self.output_tokens {
            Some(v) => Some(tokens("--output-tokens", v)?),
            None => None,
        };
        let source = match (&self.prompts, &self.input_tokens) {
            (Some(path), _) => {
                let seconds = plan.duration + plan.warmup.unwrap_or_default();
                let most = plan.rate.as_f64().max(plan_peak_rate(plan)) * seconds.as_secs_f64();
                let limit = (most.ceil() as usize).saturating_add(1);
                PromptSource::File(read_prompts(path, plan.tokenizer.as_ref(), limit)?)
            }
            (None, Some(n)) => {
                let input = tokens("--input-tokens", n)?;
                let prefix_tokens = match &self.shared_prefix_tokens {
                    Some(p) => match TokenCount::parse(p) {
                        Ok(TokenCount::Fixed(p)) => p,
                        _ => {
                            return Err(invalid(
                                "--shared-prefix-tokens",
                                p,
                                "a whole number of tokens ≥ 1, e.g. 256",
                            ))
                        }
                    },
                    None => 0,
                };
                let t = plan
                    .tokenizer
                    .as_ref()
                    .expect("check_llm_flags: a tokenizer");
                PromptSource::Synthetic(
                    Synthetic::new(input, prefix_tokens, t)
                        .map_err(|r| invalid("--tokenizer", t.name(), r))?,
                )
            }
            (None, None) => unreachable!("prompts_of is for LLM runs"),
        };
        Ok(Prompts {
            api: self.api()?,
            source,
            models,
            stream: !self.no_stream,
            output,
            exact_output: self.exact_output,
        })
    }
}

/// The highest rate of a staged plan (its stages' ends), else 0.
fn plan_peak_rate(plan: &Plan) -> f64 {
    plan.stages.iter().map(|s| s.rate).fold(0.0, f64::max)
}

/// Whether any request of `plan` carries a body (or may: a script builds its own).
fn sends_bodies(plan: &Plan) -> bool {
    !plan.body.is_empty()
        || plan.prompts.is_some()
        || plan.script.is_some()
        || plan.mix.iter().any(|m| !m.body.is_empty())
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = crate::pacer::Rng::new(nanos ^ (u64::from(std::process::id()) << 32));
    (rng.uniform() * (1u64 << 53) as f64) as u64
}

impl RunArgs {
    /// Reads the TLS files (`--cacert`, `--cert`, `--key`) now, so a missing or bad one is
    /// a usage error before any traffic.
    fn tls_settings(&self) -> Result<TlsSettings, ConfigError> {
        let show = |p: &Path| p.display().to_string();
        let mut roots = Vec::new();
        for p in &self.cacert {
            roots.extend(read_certs(p).map_err(|r| invalid("--cacert", &show(p), r))?);
        }
        let client = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some(Arc::new((
                read_certs(c).map_err(|r| invalid("--cert", &show(c), r))?,
                read_key(k).map_err(|r| invalid("--key", &show(k), r))?,
            ))),
            _ => None,
        };
        Ok(TlsSettings {
            insecure: self.insecure,
            roots,
            client,
        })
    }
}

/// Parses `--resolve HOST:PORT:ADDR` (ADDR may be an IPv6 address, bracketed or not).
fn parse_resolve(s: &str) -> Result<(String, u16, std::net::IpAddr), ConfigError> {
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
fn parse_shard(s: &str) -> Result<(u64, u64), ConfigError> {
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
fn parse_count(flag: &'static str, s: &str) -> Result<usize, ConfigError> {
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

impl RunArgs {
    /// Checks every value and builds the plan and its outputs; the first bad value is the
    /// error.
    pub fn validate(&self) -> Result<RunCommand, ConfigError> {
        let (mix, target) = self.mix_and_target()?;
        self.check_llm_flags()?;
        let Schedule {
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
        } = self.schedule()?;
        let (connections, threads) = self.connections_and_threads()?;
        let timeout =
            parse_duration(&self.timeout).map_err(|r| invalid("--timeout", &self.timeout, r))?;
        if timeout.is_zero() {
            return Err(invalid("--timeout", &self.timeout, "must be longer than 0"));
        }
        let grace = match &self.grace {
            Some(g) => parse_duration(g).map_err(|r| invalid("--grace", g, r))?,
            None => timeout,
        };
        let spin = parse_duration(&self.spin).map_err(|r| invalid("--spin", &self.spin, r))?;
        if spin > Duration::from_millis(10) {
            return Err(invalid("--spin", &self.spin, "at most 10ms, e.g. 50us"));
        }
        let mut headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        self.api_headers(&mut headers)?;
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| invalid("-m/--method", &self.method, "not an HTTP method, e.g. POST"))?;
        let body = self.body()?;
        let script = self.script_base(&target, &method, &headers, &body)?;
        let mut plan = Plan {
            target,
            rate,
            connections,
            threads,
            duration,
            until,
            min_duration,
            timeout,
            grace,
            method,
            headers,
            body,
            insecure: self.insecure,
            tls: self.tls_settings()?,
            resolve: self
                .resolve
                .iter()
                .map(|r| parse_resolve(r))
                .collect::<Result<_, _>>()?,
            connect_timeout: self.connect_timeout(timeout)?,
            http2: self.http2,
            streams: self.streams()?,
            spin,
            kernel_stamps: !self.no_kernel_timestamps,
            retry: !self.no_retry,
            precision: self.precision()?,
            arrival,
            seed,
            stages,
            start_rate: given_rate,
            warmup,
            shard,
            shards,
            start_at,
            script,
            token_rule: self.token_rule()?,
            tokenizer: None,
            slos: self
                .slos
                .iter()
                .map(|s| Slo::parse(s).map_err(|r| invalid("--slo", s, r)))
                .collect::<Result<_, _>>()?,
            mix,
            prompts: None,
            requests_log: self.requests_log()?,
            prices: self
                .prices
                .iter()
                .map(|p| parse_price(p))
                .collect::<Result<Vec<_>, _>>()?,
            group_by: self.group_by()?,
        };
        let llm = self.prompts.is_some() || self.input_tokens.is_some();
        plan.tokenizer = self.tokenizer(llm || sends_bodies(&plan))?;
        if llm {
            plan.prompts = Some(std::sync::Arc::new(self.prompts_of(&plan)?));
        }
        let tags = plan.tag_names();
        self.check_tag_count(&tags)?;
        // Shards must draw the same arrivals: without --seed, every shard derives the same
        // seed from what they share (the plan, its shard count and its start).
        if plan.shards > 1 && self.seed.is_none() {
            plan.seed = 0;
            plan.seed = u64::from_str_radix(&plan.identity(), 16).unwrap_or(0);
        }
        let metrics_addr = match &self.metrics_addr {
            Some(a) => Some(a.parse().map_err(|_| {
                invalid("--metrics-addr", a, "expected IP:PORT, e.g. 0.0.0.0:9464")
            })?),
            None => None,
        };
        let outputs = self.output.validate()?;
        check_thresholds(&plan, &outputs.thresholds, &tags)?;
        Ok(RunCommand {
            no_tui: self.no_tui,
            metrics_addr,
            plan,
            spectra: Spectra {
                corrected: self.spectra.latency,
                uncorrected: self.spectra.u_latency,
            },
            hdr_log: self.hdr_log()?,
            outputs,
        })
    }
}

/// What `--stages`, `-R`, `-d`, `-n`, `--until`, `--arrival`, `--seed`, `--shard`,
/// `--start-at` and `--warmup` make of the run's schedule.
struct Schedule {
    stages: Vec<crate::pacer::shape::Stage>,
    given_rate: Option<Rate>,
    rate: Rate,
    duration: Duration,
    min_duration: Option<Duration>,
    until: Vec<(String, f64, f64)>,
    arrival: Arrival,
    seed: u64,
    shard: u64,
    shards: u64,
    start_at: Option<std::time::SystemTime>,
    warmup: Option<Duration>,
}

impl RunArgs {
    /// The targets file's requests (or none), and the target: the file's first origin, else
    /// the URL.
    fn mix_and_target(&self) -> Result<(Vec<crate::mix::RequestSpec>, Target), ConfigError> {
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
    fn schedule(&self) -> Result<Schedule, ConfigError> {
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
    fn connections_and_threads(&self) -> Result<(usize, usize), ConfigError> {
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
    fn script_base(
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
    fn body(&self) -> Result<Bytes, ConfigError> {
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
    fn requests_log(&self) -> Result<Option<PathBuf>, ConfigError> {
        Ok(match &self.requests_log {
            Some(p) => {
                check_writable("--requests-log", p)?;
                Some(p.clone())
            }
            None => None,
        })
    }

    /// `--group-by-header`: a header name.
    fn group_by(&self) -> Result<Option<HeaderName>, ConfigError> {
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
    fn tokenizer(&self, may_ask: bool) -> Result<Option<crate::tokens::Tokenizer>, ConfigError> {
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
    fn check_tag_count(&self, tags: &[String]) -> Result<(), ConfigError> {
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
    fn connect_timeout(&self, timeout: Duration) -> Result<Duration, ConfigError> {
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
    fn streams(&self) -> Result<usize, ConfigError> {
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
    fn precision(&self) -> Result<Option<Duration>, ConfigError> {
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
    fn hdr_log(&self) -> Result<Option<PathBuf>, ConfigError> {
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
fn check_thresholds(
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

/// Parses an `--until` goal: `p99:±2%` (also `p99:2%`, `p99.9:±5%`, `p50:±1%`, and for
/// streams `ttft_p99:±5%`) into its name, quantile and relative half-width.
fn parse_until(s: &str) -> Result<(String, f64, f64), ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::Cli;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Plan, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("ratebench").chain(args.iter().copied()))
            .expect("clap accepts the shape");
        cli.run.validate().map(|c| c.plan)
    }

    #[test]
    fn a_run_that_sends_bodies_counts_with_o200k_base_unless_told_otherwise() {
        let name = |args: &[&str]| parse(args).unwrap().tokenizer.map(|t| t.name());
        assert_eq!(
            name(&["-R1", "http://h/"]),
            None,
            "bare GETs load no vocabulary"
        );
        assert_eq!(
            name(&["-R1", "--body", "{}", "http://h/"]),
            Some("o200k_base")
        );
        assert_eq!(
            name(&["-R1", "--tokenizer", "llama3", "http://h/"]),
            Some("llama3")
        );
        assert_eq!(
            name(&["-R1", "--body", "{}", "--tokenizer", "none", "http://h/"]),
            None
        );
        let e = parse(&["-R1", "--tokenizer", "gpt5", "http://h/"]).unwrap_err();
        assert!(e.to_string().contains("--tokenizer"), "{e}");
    }

    #[test]
    fn llm_flags_that_do_not_fit_together_are_refused_before_any_traffic() {
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        let u = "http://h/v1/chat/completions";
        let ok = parse(&[
            "-R1",
            "--model",
            "m",
            "--input-tokens",
            "512±64",
            "--output-tokens",
            "normal:128,16",
            "--exact-output",
            "--shared-prefix-tokens",
            "256",
            u,
        ])
        .unwrap();
        let p = ok.prompts.expect("prompts made");
        assert_eq!(p.output, Some(TokenCount::Normal(128.0, 16.0)));
        assert!(p.exact_output);
        match &p.source {
            PromptSource::Synthetic(s) => {
                assert_eq!(
                    (s.input, s.prefix_tokens),
                    (TokenCount::Uniform(448, 576), 256)
                )
            }
            other => panic!("{other:?}"),
        }
        for (args, says) in [
            (vec!["--input-tokens", "100"], "--model"),
            (vec!["--model", "m"], "--prompts FILE"),
            (
                vec!["--output-tokens", "100"],
                "--output-tokens is for LLM runs",
            ),
            (vec!["--exact-output"], "--exact-output is for LLM runs"),
            (
                vec!["--model", "m", "--input-tokens", "0"],
                "--input-tokens",
            ),
            (
                vec![
                    "--model",
                    "m",
                    "--input-tokens",
                    "9",
                    "--output-tokens",
                    "lots",
                ],
                "--output-tokens",
            ),
            (
                vec![
                    "--model",
                    "m",
                    "--input-tokens",
                    "9",
                    "--prompts",
                    "p.jsonl",
                ],
                "use one of the two",
            ),
            (
                vec!["--model", "m", "--input-tokens", "9", "--tokenizer", "none"],
                "name one",
            ),
            (
                vec![
                    "--model",
                    "m",
                    "--prompts",
                    "p.jsonl",
                    "--shared-prefix-tokens",
                    "9",
                ],
                "--shared-prefix-tokens is for",
            ),
            (
                vec![
                    "--model",
                    "m",
                    "--input-tokens",
                    "9",
                    "--shared-prefix-tokens",
                    "1±1",
                ],
                "--shared-prefix-tokens",
            ),
        ] {
            let mut a = vec!["-R1"];
            a.extend(args.iter().copied());
            a.push(u);
            let e = err(&a);
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_api_sets_the_token_rule_and_its_headers() {
        let u = "http://h/v1/messages";
        let p = parse(&["-R1", "--api", "anthropic-messages", "--api-key", "sk-1", u]).unwrap();
        assert_eq!(p.token_rule, TokenRule::Anthropic);
        let header = |p: &Plan, n: &str| {
            p.headers
                .iter()
                .find(|(k, _)| k.as_str() == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header(&p, "anthropic-version").as_deref(),
            Some("2023-06-01")
        );
        assert_eq!(header(&p, "x-api-key").as_deref(), Some("sk-1"));
        assert_eq!(header(&p, "authorization"), None);
        // -H wins; --sse-token overrides the API's rule.
        let p = parse(&[
            "-R1",
            "--api",
            "anthropic-messages",
            "-H",
            "anthropic-version: 2024-01-01",
            "--sse-token",
            "any",
            u,
        ])
        .unwrap();
        assert_eq!(
            header(&p, "anthropic-version").as_deref(),
            Some("2024-01-01")
        );
        assert_eq!(p.token_rule, TokenRule::AnyData);
        let p = parse(&["-R1", "--api-key", "sk-2", u]).unwrap();
        assert_eq!(header(&p, "authorization").as_deref(), Some("Bearer sk-2"));
        assert_eq!(p.token_rule, TokenRule::OpenAi);
        let p = parse(&["-R1", "--api", "openai-responses", u]).unwrap();
        assert_eq!(p.token_rule, TokenRule::Responses);
        let e = parse(&["-R1", "--api", "gemini", u])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--api") && e.contains("anthropic-messages"),
            "{e}"
        );
        let e = parse(&[
            "-R1",
            "--api",
            "anthropic-messages",
            "--model",
            "m",
            "--input-tokens",
            "9",
            "--output-tokens",
            "9",
            "--exact-output",
            u,
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--exact-output"), "{e}");
    }

    #[test]
    fn wrk2_command_lines() {
        let c = parse(&[
            "-R1000",
            "-c100",
            "-d30s",
            "-t2",
            "http://127.0.0.1:8080/x?y=1",
        ])
        .unwrap();
        assert_eq!(c.rate, Rate::per_second(1000));
        assert_eq!((c.connections, c.threads), (100, 2));
        assert_eq!(c.duration, Duration::from_secs(30));
        assert_eq!(c.target.path, "/x?y=1");
        assert_eq!(c.target.authority, "127.0.0.1:8080");
        let c = parse(&[
            "-t",
            "1",
            "-c",
            "1",
            "-R",
            "30/m",
            "-d",
            "1m",
            "-L",
            "-U",
            "https://[::1]/",
        ])
        .unwrap();
        assert!(c.target.tls);
        // -L/-U choose what the text report prints: beside the plan, not in it.
        let cli = Cli::try_parse_from(["ratebench", "-R1", "-L", "-U", "http://h/"]).unwrap();
        let spectra = cli.run.validate().unwrap().spectra;
        assert!(spectra.corrected && spectra.uncorrected);
        assert_eq!((c.target.host.as_str(), c.target.port), ("::1", 443));
    }

    #[test]
    fn headers_with_and_without_space() {
        let c = parse(&["-R1", "-H", "X-A: 1", "-H", "X-B:2", "http://h/"]).unwrap();
        assert_eq!(c.headers[0].0, "x-a");
        assert_eq!(c.headers[1].1, "2");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["-R1000", "not a url"], "URL"),
            (&["-R1000", "ftp://h/"], "unsupported scheme"),
            (&["-R1000", "-d", "10x", "http://h/"], "-d/--duration"),
            (&["-R", "0", "http://h/"], "-R/--rate"),
            (&["-R1", "-c", "0", "http://h/"], "-c/--connections"),
            (&["-R1", "-c", "2", "-t", "3", "http://h/"], "-t/--threads"),
            (&["http://h/"], "-R/--rate"),
            (&["-R1", "-H", "nocolon", "http://h/"], "-H/--header"),
            (&["-R1", "--timeout", "0s", "http://h/"], "--timeout"),
        ];
        for (args, flag) in cases {
            let e = parse(args)
                .expect_err(&format!("{args:?} should fail"))
                .to_string();
            assert!(e.contains(flag), "{args:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn serve_stall() {
        let a = ServeArgs {
            addr: "127.0.0.1:0".into(),
            delay: "200us".into(),
            body_size: "1k".into(),
            stall: Some("1s@5s".into()),
            stall_every: Some("10s".into()),
            stall_chance: None,
            slow: None,
            tls: false,
            cert: None,
            key: None,
            client_ca: None,
            threads: "1".into(),
            ttft: "100ms..300ms".into(),
            token_interval: "20ms".into(),
            tokens: "50".into(),
            tokenizer: "cl100k_base".into(),
            prefill_rate: Some("5000".into()),
            decode_slowdown: Some("1%".into()),
            max_concurrency: Some("64".into()),
            reject_when_full: true,
            statuses: vec!["429:5%".into()],
            http2: false,
            max_streams: None,
            goaway_after: None,
            reset: Some("1%".into()),
            key_limit: Some("100/m".into()),
            key_token_limit: None,
            upstreams: Some("a,b".into()),
        };
        let c = a.validate().unwrap();
        assert_eq!(c.delay, Duration::from_micros(200));
        assert_eq!(c.delay_max, None);
        let random = ServeArgs {
            delay: "1ms..3ms".into(),
            ..a.clone()
        }
        .validate()
        .unwrap();
        assert_eq!(
            (random.delay, random.delay_max),
            (Duration::from_millis(1), Some(Duration::from_millis(3)))
        );
        let e = ServeArgs {
            delay: "3ms..1ms".into(),
            ..a.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("--delay"), "{e}");
        assert_eq!(c.body_size, 1000);
        assert_eq!(
            c.stall,
            Some(Stall {
                length: Duration::from_secs(1),
                at: Duration::from_secs(5),
                every: Some(Duration::from_secs(10)),
                chance_ppm: 1_000_000,
            })
        );
        assert_eq!(
            c.llm.ttft,
            (Duration::from_millis(100), Duration::from_millis(300))
        );
        assert_eq!(c.llm.tokens, (50, 50));
        assert_eq!(c.llm.tokenizer.name(), "cl100k_base");
        assert_eq!(c.llm.prefill_rate, Some(5000));
        assert_eq!(
            (
                c.llm.decode_slowdown_ppm,
                c.llm.max_concurrency,
                c.llm.reject_when_full
            ),
            (10_000, Some(64), true)
        );
        for bad in ["0", "fast", "-5"] {
            let e = ServeArgs {
                prefill_rate: Some(bad.into()),
                ..a.clone()
            }
            .validate()
            .unwrap_err()
            .to_string();
            assert!(e.contains("--prefill-rate"), "{e}");
        }
        let e = ServeArgs {
            tokenizer: "gpt9".into(),
            ..a.clone()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--tokenizer") && e.contains("o200k_base"), "{e}");
        assert_eq!(c.statuses, vec![(429, 0.05)]);
    }
}
