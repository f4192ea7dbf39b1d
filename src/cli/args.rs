//! The command line as typed: clap's `Cli`, its subcommands and their flags, every value
//! kept as the string the user wrote. Nothing here judges a value; `cli::validate` does,
//! so that each bad value gets one message naming its flag and showing what works.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// ratebench: an open-loop, constant-rate HTTP load generator with coordinated-omission
/// corrected latency.
#[derive(Debug, Parser)]
#[command(
    name = "ratebench",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Example: ratebench -R1000 -c100 -d30s http://127.0.0.1:8080/"
)]
pub struct Cli {
    /// What to do instead of a load test.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The load test's flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in target server (for demos, tests and experiments).
    Serve(Box<ServeArgs>),
    /// Start `serve` with a stall and run a short test against it: corrected vs uncorrected.
    Demo(DemoArgs),
    /// Merge HdrHistogram interval logs (.hlog) from one or more runs and report on them.
    Report(ReportArgs),
    /// Compare runs: is NEW faster or slower than BASE beyond the noise? (JSON summaries or
    /// interval logs; several per side with --base/--new.)
    Compare(CompareArgs),
    /// Find where the tail breaks: constant-rate steps from --from to --to, each checked
    /// against the thresholds, then a bisection between the last passing and first failing.
    Sweep(Box<SweepArgs>),
}

/// `ratebench sweep` flags, as typed: its own, and a run's (without -R).
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The first (lowest) rate: 100, 2.5k.
    #[arg(long = "from", value_name = "R0")]
    pub from: String,
    /// The last (highest) rate.
    #[arg(long = "to", value_name = "R1")]
    pub to: String,
    /// Geometric steps from R0 to R1, both included.
    #[arg(long = "steps", value_name = "N", default_value = "8")]
    pub steps: String,
    /// Bisections between the last passing and the first failing step.
    #[arg(long = "refine", value_name = "K", default_value = "3")]
    pub refine: String,
    /// Each step's flags: -d, -c, -t, --threshold, --json, --html … (not -R).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Where to write reports, and what must hold: shared by a run and `report`.
#[derive(Debug, Args, Default, Clone)]
pub struct OutputArgs {
    /// Write the percentile table (corrected and uncorrected) as CSV.
    #[arg(long = "csv", value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the per-second time series as CSV.
    #[arg(long = "csv-timeseries", value_name = "FILE")]
    pub csv_timeseries: Option<PathBuf>,
    /// Write the JSON summary (`-` for stdout; the text report then goes to stderr).
    #[arg(long = "json", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with plots.
    #[arg(long = "html", value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the thresholds as JUnit XML (a test case each), for CI systems.
    #[arg(long = "junit", value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Fail the run (exit 99) unless this holds: p99<250ms, p99.9<1s, max<2s, mean<10ms,
    /// errors<1%, errors<=5, rate>990 (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

/// `-L` and `-U`, shared by a run and `report`.
#[derive(Debug, Args, Default, Clone, Copy)]
pub struct SpectraArgs {
    /// Print the detailed (corrected) latency percentile spectrum.
    #[arg(short = 'L', long = "latency")]
    pub latency: bool,
    /// Also print the uncorrected latency percentile spectrum.
    #[arg(short = 'U', long = "u_latency", alias = "u-latency")]
    pub u_latency: bool,
}

/// `ratebench report` arguments, as typed.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Interval logs written with --hdr-log (several: runs that happened at the same time,
    /// e.g. on several load machines).
    #[arg(value_name = "FILE.hlog", required = true)]
    pub logs: Vec<PathBuf>,
    /// Percentile spectra to print.
    #[command(flatten)]
    pub spectra: SpectraArgs,
    /// Merge the logs of a sharded plan even when shards are missing, doubled or from
    /// another plan (the report says so).
    #[arg(long = "allow-partial")]
    pub allow_partial: bool,
    /// Outputs and thresholds.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ratebench compare` arguments, as typed.
#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// BASE NEW [NEW…]: each NEW compared with BASE (one run each; JSON summaries written
    /// with --json, or interval logs written with --hdr-log).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// BASE as repeated runs of the same plan (the variance between them then counts).
    #[arg(long = "base", value_name = "FILE", num_args = 1..)]
    pub base: Vec<PathBuf>,
    /// NEW as repeated runs of the same plan.
    #[arg(long = "new", value_name = "FILE", num_args = 1..)]
    pub new: Vec<PathBuf>,
    /// Exit 99 when this change is significant and beyond the bound: p99>+5%, p50>+2ms,
    /// ttft_p99>+10%, errors>+1% (points), rate<-5% (repeatable).
    #[arg(long = "fail-if", value_name = "EXPR")]
    pub fail_if: Vec<String>,
    /// Compare runs of different plans (URL, rate, arrival, connections) anyway.
    #[arg(long = "force")]
    pub force: bool,
    /// Write the comparison as JSON (`-` for stdout; the text then goes to stderr).
    #[arg(long = "json", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an HTML page with the percentile spectra overlaid, intervals shaded.
    #[arg(long = "html", value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// A load test's flags, as typed.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Total requests per second across all threads and connections: 1000, 2.5k, 0.5, 30/m.
    #[arg(
        short = 'R',
        long = "rate",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub rate: Option<String>,
    /// Connections kept open (HTTP/1.1: at most one request in flight on each).
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value = "10",
        allow_hyphen_values = true
    )]
    pub connections: String,
    /// Worker threads [default: number of cores, at most -c].
    #[arg(
        short = 't',
        long = "threads",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub threads: Option<String>,
    /// Measured load duration: 30s, 2m, 1h, 1500ms [default: 10s; with --stages, their sum].
    #[arg(
        short = 'd',
        long = "duration",
        value_name = "T",
        allow_hyphen_values = true
    )]
    pub duration: Option<String>,
    /// Exactly N requests at the rate (the load lasts N/R), as oha's -n; instead of -d.
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<String>,
    /// How arrivals are spaced: constant (one every 1/R), poisson (exponential gaps, mean
    /// 1/R), or gamma:K (gamma gaps, mean 1/R; K < 1 burstier than Poisson).
    #[arg(long = "arrival", value_name = "KIND", default_value = "constant")]
    pub arrival: String,
    /// Seed of the random arrivals (printed in the report, so any run can be repeated)
    /// [default: drawn at random].
    #[arg(long = "seed", value_name = "N")]
    pub seed: Option<String>,
    /// Ramping rate, k6-style: each stage moves the rate linearly from the previous stage's
    /// end (the first from -R, or 0) to R over D: 30s:100,1m:100,30s:0. -d is their sum.
    #[arg(long = "stages", value_name = "D:R,…")]
    pub stages: Option<String>,
    /// Send traffic at the first stage's rate (or -R) for T before the measured window;
    /// counted on its own line, kept out of every result.
    #[arg(long = "warmup", value_name = "T")]
    pub warmup: Option<String>,
    /// Run shard I of N of the whole plan (-R stays the whole test's rate): this process
    /// sends the global requests k with k mod N = I, at the single run's times.
    #[arg(long = "shard", value_name = "I/N")]
    pub shard: Option<String>,
    /// Start the schedule at this wall-clock time (RFC 3339 or Unix seconds), so shards on
    /// several machines start together.
    #[arg(long = "start-at", value_name = "TIME")]
    pub start_at: Option<String>,
    /// Serve live Prometheus metrics of the run at this address (e.g. 0.0.0.0:9464), at
    /// any path; labelled with the shard and the plan.
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Add a request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "K: V")]
    pub headers: Vec<String>,
    /// Per-request timeout, counted from the actual send.
    #[arg(long = "timeout", value_name = "T", default_value = "10s")]
    pub timeout: String,
    /// How long to wait for requests still queued or in flight after the load duration
    /// [default: the --timeout value].
    #[arg(long = "grace", value_name = "T")]
    pub grace: Option<String>,
    /// Percentile spectra to print.
    #[command(flatten)]
    pub spectra: SpectraArgs,
    /// Request method.
    #[arg(
        short = 'm',
        long = "method",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,
    /// Request body.
    #[arg(long = "body", value_name = "STRING", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body, read from a file.
    #[arg(long = "body-file", value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Skip TLS certificate verification.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Trust the certificates of this PEM bundle too (beside the built-in web roots and the
    /// system's trust store), as curl's --cacert.
    #[arg(long = "cacert", value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
    /// Present this client certificate (PEM chain) for mTLS; needs --key.
    #[arg(long = "cert", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --cert.
    #[arg(long = "key", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Connect to ADDR for HOST:PORT, while the URL, Host header and TLS name keep HOST, as
    /// curl's --resolve (repeatable).
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Limit for opening a connection (TCP connect and TLS handshake), apart from
    /// --timeout [default: the --timeout value].
    #[arg(long = "connect-timeout", value_name = "T")]
    pub connect_timeout: Option<String>,
    /// Speak HTTP/2: over https ALPN offers only h2 (a server that does not agree stops the
    /// run before traffic); over http, h2c with prior knowledge. -c is then the number of
    /// HTTP/2 connections.
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2: at most N requests in flight on one connection, further capped by the
    /// server's SETTINGS_MAX_CONCURRENT_STREAMS [default: 100].
    #[arg(long, value_name = "N")]
    pub streams: Option<String>,
    /// Pacing: sleep in a kernel timer until this long before each due time, then
    /// busy-wait; without kernel receive timestamps the thread also stays awake for
    /// responses expected within 1ms when that costs under a quarter of its time. 0 sleeps
    /// only.
    #[arg(long = "spin", value_name = "T", default_value = "50us")]
    pub spin: String,
    /// Time responses when the worker reads them, not by the kernel's receive timestamps
    /// (the thread then stays awake for fast responses, as --spin describes).
    #[arg(long = "no-kernel-timestamps")]
    pub no_kernel_timestamps: bool,
    /// Count every request the server refused unprocessed as an error: HTTP/2 streams
    /// above a GOAWAY's last stream or reset with REFUSED_STREAM, and HTTP/1.1 requests on
    /// a reused connection the server closed before answering [default: sent again once,
    /// on another connection, and counted under Retried].
    #[arg(long = "no-retry")]
    pub no_retry: bool,
    /// Run past -d until this percentile's 95 % interval is within ±B % of it:
    /// 'p99:±2%' (repeatable: until all hold), up to --max-duration.
    #[arg(long = "until", value_name = "pNN:±B%")]
    pub until: Vec<String>,
    /// With --until: the longest the load may run [default: 10 × -d].
    #[arg(long = "max-duration", value_name = "T")]
    pub max_duration: Option<String>,
    /// Send each request by the kernel's timer: an io_uring linked timeout queued ahead of
    /// its due time, no spin, send lag from the kernel's transmit stamp — about two thirds
    /// of the CPU per request, a send lag p50 of ~20 µs (docs/performance.md). auto: when
    /// the run allows it (HTTP/1.1 over plain TCP, no Lua script, no --precision) and the
    /// kernel lets this process use io_uring; on: always (a run that cannot is refused);
    /// off: the timer and --spin.
    #[arg(long = "io-uring", value_name = "WHEN", default_value = "off")]
    pub io_uring: String,
    /// Coarser, cheaper pacing: wake at most once per T and send everything then due, so a
    /// request may go out up to T late (in its latency and send lag) [default: exact].
    #[arg(long = "precision", value_name = "T")]
    pub precision: Option<String>,
    /// Lua script with wrk's API (setup, init, request, response, delay, done).
    #[arg(short = 's', long = "script", value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Words after `--`, passed to the script's init(args) as args[1]…
    #[arg(last = true, value_name = "ARGS", index = 2)]
    pub script_args: Vec<String>,
    /// Which events of a text/event-stream response are tokens: `openai` (choices[].delta
    /// .content, tool-call arguments, choices[].text), `responses` (OpenAI Responses
    /// output_text deltas), `anthropic` (content_block_delta), `any` (every data event), or
    /// a JSON path with `*` for arrays, e.g. `delta.text`. [default: the --api's]
    #[arg(long = "sse-token", value_name = "RULE")]
    pub sse_token: Option<String>,
    /// The LLM API spoken: openai-chat, openai-completions, openai-responses,
    /// anthropic-messages. Sets the body --prompts and --input-tokens build, which events
    /// are tokens, and (anthropic) the anthropic-version header.
    #[arg(long = "api", value_name = "NAME", default_value = "openai-chat")]
    pub api: String,
    /// The API key: sent as `Authorization: Bearer KEY` (OpenAI) or `x-api-key: KEY`
    /// (Anthropic), unless -H gives that header.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_key: Option<String>,
    /// With --api anthropic-messages: the anthropic-version header, unless -H gives it.
    #[arg(
        long = "anthropic-version",
        value_name = "V",
        default_value = "2023-06-01"
    )]
    pub anthropic_version: String,
    /// Counts streamed output tokens where the server sends no usage: o200k_base,
    /// cl100k_base, llama3, qwen2, deepseek_v3, mistral_v3, …; none: one per content event.
    /// [default: o200k_base when the run sends request bodies (a body, prompts, targets or
    /// a script); none for a run of bare GETs]
    #[arg(long = "tokenizer", value_name = "NAME")]
    pub tokenizer: Option<String>,
    /// A per-request goodput target for streamed responses: ttft<500ms, itl<50ms (the
    /// longest gap), tpot<20ms, e2e<2s (repeatable; a request is good if it meets all).
    #[arg(long = "slo", value_name = "EXPR")]
    pub slos: Vec<String>,
    /// Several kinds of request in one run, from a file: Vegeta's http format (METHOD URL,
    /// header lines, @body, blank line between targets) or JSONL ({"method", "url",
    /// "header", "body"/"body_base64", "tag", "weight"}); request k gets target k by smooth
    /// weighted round-robin. The URL argument is then left out.
    #[arg(long = "targets", value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// LLM runs without Lua: OpenAI chat-completions bodies from this JSONL file
    /// ({"prompt": "…"} or {"messages": [...]}, optional max_tokens) or ShareGPT JSON list
    /// (the first human turn; max_tokens = the answer's tokens), taken in turn; POSTed to
    /// the URL (e.g. http://host/v1/chat/completions). Needs --model.
    #[arg(long = "prompts", value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// Prompts made to a length instead of read: each request's own prompt of exactly N
    /// tokens by --tokenizer, from the seed: 1024, 512±64, uniform:256..1024, normal:512,64.
    /// Needs --model.
    #[arg(long = "input-tokens", value_name = "N")]
    pub input_tokens: Option<String>,
    /// Each request's max_tokens (over a prompts file's): 128, 128±32, uniform:a..b,
    /// normal:m,s.
    #[arg(long = "output-tokens", value_name = "M")]
    pub output_tokens: Option<String>,
    /// With --input-tokens: the same P-token prefix before every prompt (to measure a
    /// server's prefix cache on purpose); a request's input is then P + N tokens.
    #[arg(long = "shared-prefix-tokens", value_name = "P")]
    pub shared_prefix_tokens: Option<String>,
    /// Also send min_tokens = max_tokens and ignore_eos: true (honoured by vLLM, SGLang,
    /// TGI), so every answer is exactly max_tokens long.
    #[arg(long = "exact-output")]
    pub exact_output: bool,
    /// With --prompts or --input-tokens: a model to ask, with its share of requests
    /// (repeatable); each model is a tag.
    #[arg(long = "model", value_name = "NAME[=WEIGHT]")]
    pub models: Vec<String>,
    /// With --prompts or --input-tokens: ask for whole answers ("stream": false) instead
    /// of event streams.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Split results by this response header's value (e.g. X-Upstream: which upstream
    /// served it), at most 64 values (the rest as "(other)").
    #[arg(long = "group-by-header", value_name = "NAME")]
    pub group_by_header: Option<String>,
    /// USD per million input/output tokens of a model, for the run's estimated cost:
    /// gpt-4o=2.5/10 (repeatable).
    #[arg(long = "price", value_name = "MODEL=IN/OUT")]
    pub prices: Vec<String>,
    /// Write an HdrHistogram interval log (one line per second, tags `corrected` and
    /// `uncorrected`), readable by HdrHistogram tools and `ratebench report`.
    #[arg(long = "hdr-log", value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Write one line per request (TSV: intended, sent, first byte and done, seconds from
    /// the start; status, bytes, error, tag, connection), streamed in constant memory.
    #[arg(long = "requests-log", value_name = "FILE")]
    pub requests_log: Option<PathBuf>,
    /// No live view: the one-line progress a second, even on a terminal (the live view is
    /// never drawn when stdout or stderr is not a terminal).
    #[arg(long = "no-tui")]
    pub no_tui: bool,
    /// Outputs and thresholds.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Target URL, http:// or https://.
    #[arg(value_name = "URL", index = 1)]
    pub url: Option<String>,
}

/// `ratebench serve` flags, as typed.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Service delay per response: 0, 200us, 5ms; or A..B, uniformly random per request
    /// (independent service times): 1ms..3ms.
    #[arg(long, default_value = "0")]
    pub delay: String,
    /// Response body size: 100, 4k, 1Mi.
    #[arg(long = "body-size", default_value = "100")]
    pub body_size: String,
    /// Freeze every response for FOR, starting AT after the server starts: 1s@5s.
    #[arg(long, value_name = "FOR@AT")]
    pub stall: Option<String>,
    /// Repeat the stall every PERIOD (needs --stall).
    #[arg(long = "stall-every", value_name = "PERIOD")]
    pub stall_every: Option<String>,
    /// Each repeated stall happens only with this chance, period by period (needs
    /// --stall-every): 30% — bursts at random, as a real server's slow spells come.
    #[arg(long = "stall-chance", value_name = "SHARE%")]
    pub stall_chance: Option<String>,
    /// Multiply the service delay (--delay) by FACTOR for FOR, starting AT after the server
    /// starts: 10@30s+15s (ten times slower from 30 s to 45 s).
    #[arg(long, value_name = "FACTOR@AT+FOR")]
    pub slow: Option<String>,
    /// Serve HTTPS with a freshly generated self-signed certificate (or --cert/--key).
    #[arg(long)]
    pub tls: bool,
    /// Serve HTTPS with this certificate chain (PEM; implies --tls); needs --key.
    #[arg(long = "cert", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long = "key", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Require a client certificate signed by this CA (PEM): mutual TLS.
    #[arg(long = "client-ca", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Runtime threads for the server.
    #[arg(long, default_value = "1")]
    pub threads: String,
    /// /v1/chat/completions: time to first token, fixed or a range: 200ms, 100ms..300ms.
    #[arg(long, default_value = "200ms")]
    pub ttft: String,
    /// /v1/chat/completions: gap between tokens, fixed or a range: 20ms, 10ms..30ms.
    #[arg(long = "token-interval", default_value = "20ms")]
    pub token_interval: String,
    /// /v1/chat/completions: tokens per answer, fixed or a range: 50, 20..80 (a request's
    /// max_tokens cuts it; min_tokens, or ignore_eos with max_tokens, stretches it).
    #[arg(long, default_value = "50")]
    pub tokens: String,
    /// /v1/chat/completions: the tokenizer that counts a prompt's tokens (usage.prompt_tokens):
    /// o200k_base, cl100k_base, llama3, qwen2, deepseek_v3, mistral_v3, ….
    #[arg(long, default_value = crate::tokens::DEFAULT)]
    pub tokenizer: String,
    /// /v1/chat/completions: prompt tokens processed per second before the first token, on
    /// top of --ttft (5000: a 1,000-token prompt answers 200 ms later).
    #[arg(long = "prefill-rate", value_name = "TOKENS/S")]
    pub prefill_rate: Option<String>,
    /// LLM endpoints: each token interval grows by this share per other answer in flight
    /// (1%: with 50 answers at once, tokens come 49 % slower), as a batching server's do.
    #[arg(long = "decode-slowdown", value_name = "PCT%")]
    pub decode_slowdown: Option<String>,
    /// LLM endpoints: at most N answers at once (an inference server's batch); the rest
    /// wait their turn (the wait is part of their TTFT), or with --reject-when-full get 429.
    #[arg(long = "max-concurrency", value_name = "N")]
    pub max_concurrency: Option<String>,
    /// With --max-concurrency: answer 429 (Retry-After: 1) instead of queueing.
    #[arg(long = "reject-when-full")]
    pub reject_when_full: bool,
    /// Answer an exact share of requests with this status instead: 429:5% (429 and 503
    /// carry Retry-After: 1). Repeatable.
    #[arg(long = "status", value_name = "CODE:SHARE%")]
    pub statuses: Vec<String>,
    /// Speak HTTP/2: h2 through ALPN with --tls (HTTP/1.1 still offered), else h2c with
    /// prior knowledge only.
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2: announce this SETTINGS_MAX_CONCURRENT_STREAMS (hyper's default: 200).
    #[arg(long = "max-streams", value_name = "N")]
    pub max_streams: Option<String>,
    /// Close each connection gracefully after N requests (HTTP/2: GOAWAY; HTTP/1.1:
    /// Connection: close), as load balancers recycle connections.
    #[arg(long = "goaway-after", value_name = "N")]
    pub goaway_after: Option<String>,
    /// Reset an exact share of requests instead of answering (HTTP/2: RST_STREAM
    /// INTERNAL_ERROR; HTTP/1.1: the connection is closed): 1%.
    #[arg(long, value_name = "SHARE%")]
    pub reset: Option<String>,
    /// Rate-limit each distinct Authorization value (a token bucket of N refilled over
    /// PERIOD): over it, 429 with Retry-After and x-ratelimit-remaining-requests: 100/m.
    #[arg(long = "key-limit", value_name = "N/PERIOD")]
    pub key_limit: Option<String>,
    /// Limit each key's output tokens on /v1/chat/completions too (as gateways enforce
    /// TPM beside RPM): 20000/m.
    #[arg(long = "key-token-limit", value_name = "N/PERIOD")]
    pub key_token_limit: Option<String>,
    /// Answer as these upstreams in turn, naming each in X-Upstream; with --stall, each
    /// stall takes the next upstream down (its requests fail over to the others) instead of
    /// freezing every response: a,b,c.
    #[arg(long, value_name = "A,B,…")]
    pub upstreams: Option<String>,
}

/// `ratebench demo` flags, as typed.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Demo load duration.
    #[arg(short = 'd', long, default_value = "6s")]
    pub duration: String,
    /// Demo rate.
    #[arg(short = 'R', long, default_value = "1000")]
    pub rate: String,
}
