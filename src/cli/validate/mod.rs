//! The command line, validated: each flag's string parsed strictly into the engine's `Plan`
//! (and, beside it, where reports go and which spectra to print), `serve`'s config, and
//! the outputs of `ratebench report`. The first bad value is the error, before any traffic.
//!
//! Here: the commands and outputs, and a run's `validate` as the sequence of its parts;
//! `parts` (the schedule — rate, duration, arrivals, shards — and every other part of a
//! plan), `llm` (prompts, APIs, tokens), `serve` (the built-in target's flags) and `parse`
//! (single values) hold them.

mod llm;
mod parse;
mod parts;
mod serve;
#[cfg(test)]
mod tests;

use parse::{parse_count, parse_resolve};
pub use parse::{parse_header, parse_price};
use parts::{check_thresholds, Schedule};

use super::args::{OutputArgs, RunArgs, SweepArgs};
use crate::engine::plan::IoUringMode;
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

/// A seed for random arrivals when none is given: from the clock and the process id, and
/// printed in the report so the run can be repeated with `--seed`.
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
            io_uring: self.io_uring()?,
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
        if let (IoUringMode::On, Some(why)) = (plan.io_uring, plan.io_uring_blocked()) {
            return Err(invalid(
                "--io-uring",
                "on",
                format!("this run cannot send by io_uring: {why}"),
            ));
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
