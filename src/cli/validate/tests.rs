//! The validation's unit tests: flags into plans, and what is refused.

use super::*;
use crate::cli::args::ServeArgs;

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
