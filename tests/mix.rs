//! Traffic mixes against servers on loopback: a targets file's weights give exact shares,
//! per tag, in every output; Vegeta's format with headers and an @body; the bytes
//! `--prompts` and `--model` put on the wire; 429s counted with their Retry-After against
//! `serve --key-limit`; `--group-by-header` across `serve --upstreams`; tags from Lua.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How many of the requests a raw server kept start with each of `lines`.
fn count_starts(server: &RawServer, lines: &[&str]) -> Vec<usize> {
    let seen = server.seen.lock().unwrap();
    lines
        .iter()
        .map(|l| seen.iter().filter(|r| r.starts_with(l)).count())
        .collect()
}

#[test]
fn weights_one_to_three_give_exact_shares_per_tag_in_every_output() {
    let server = raw_server(Behaviour::Ok);
    let dir = tmpdir("mix-shares");
    let targets = dir.join("targets.jsonl");
    std::fs::write(
        &targets,
        format!(
            "{{\"url\":\"http://{0}/a\",\"tag\":\"a\"}}\n{{\"url\":\"http://{0}/b\",\"tag\":\"b\",\"weight\":3}}\n",
            server.addr
        ),
    )
    .unwrap();
    let (csv, hlog, html) = (dir.join("p.csv"), dir.join("run.hlog"), dir.join("r.html"));
    let json = dir.join("s.json");
    // 400 requests: request k goes to target k by smooth weighted round-robin, so the 1:3
    // shares are exact (100 and 300), not a random draw near them.
    let out = load_targets(&targets)
        .rate("200")
        .duration("2s")
        .connections(4)
        .flag("--csv", csv.to_str().unwrap())
        .flag("--hdr-log", hlog.to_str().unwrap())
        .flag("--html", html.to_str().unwrap())
        .flag("--json", json.to_str().unwrap())
        .run_bin(Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(count_starts(&server, &["GET /a ", "GET /b "]), [100, 300]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for (tag, n) in [("a", 100), ("b", 300)] {
        let t = &doc["tags"][tag];
        assert_eq!(
            (t["requests"].as_u64(), t["completed"].as_u64()),
            (Some(n), Some(n))
        );
        assert_eq!(t["status_codes"]["200"], n);
        assert_eq!(t["latency_ms"]["count"], n);
        // Each tag's percentiles have their intervals where it has enough requests:
        // p50 (20 needed) yes, p99 (1,000 needed) not with 100 or 300.
        let (p50, ci) = (&t["latency_ms"]["p50"], &t["latency_ms"]["ci95"]);
        assert!(
            ci["p50"][0].as_f64() <= p50.as_f64() && p50.as_f64() <= ci["p50"][1].as_f64(),
            "{ci}"
        );
        assert!(ci["p99"].is_null(), "{ci}");
    }
    assert!(
        text.contains("p99 95 % interval") && text.contains("[n/a: needs ≥ 1000 requests]"),
        "{text}"
    );
    // Text: a By tag row per tag with its request count.
    let row = |tag: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{tag} ")) && l.contains("  "))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
    };
    assert!(text.contains("By tag:"), "{text}");
    assert_eq!(row("a").as_deref(), Some("100"), "{text}");
    assert_eq!(row("b").as_deref(), Some("300"), "{text}");
    // CSV: a column per tag.
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with("tag:a_ms,tag:b_ms"),
        "{csv}"
    );
    // HTML: one spectrum line per tag.
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("by tag"), "the by-tag chart");
    // Interval log: a distribution per tag; `report` reads the shares back.
    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(log.contains("Tag=tag:a,") && log.contains("Tag=tag:b,"));
    let merged = dir.join("merged.json");
    let out = run_bin(
        &[
            "report",
            hlog.to_str().unwrap(),
            "--json",
            merged.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    assert_eq!(m["tags"]["a"]["requests"], 100);
    assert_eq!(m["tags"]["b"]["latency_ms"]["count"], 300);
}

#[test]
fn vegeta_http_targets_with_a_header_and_an_at_body() {
    let server = raw_server(Behaviour::Ok);
    let dir = tmpdir("mix-vegeta");
    let body = dir.join("body.json");
    std::fs::write(&body, "{\"x\":1}").unwrap();
    let targets = dir.join("targets.txt");
    std::fs::write(
        &targets,
        format!(
            "# Vegeta's http format\nPOST http://{0}/upload\nX-Test: yes\n@{1}\n\nGET http://{0}/get\n",
            server.addr,
            body.display()
        ),
    )
    .unwrap();
    let (r, doc) = load_targets(&targets)
        .rate("100")
        .duration("1s")
        .connections(2)
        .run_json();
    assert_eq!(r.recorder.total.completed, 100);
    assert_eq!(doc["tags"]["POST /upload"]["requests"], 50);
    assert_eq!(doc["tags"]["GET /get"]["requests"], 50);
    let seen = server.seen.lock().unwrap();
    let post = seen
        .iter()
        .find(|r| r.starts_with("POST /upload "))
        .expect("a POST arrived");
    let lower = post.to_ascii_lowercase();
    assert!(lower.contains("\r\nx-test: yes\r\n"), "{post}");
    assert!(lower.contains("\r\ncontent-length: 7\r\n"), "{post}");
    assert!(post.ends_with("\r\n\r\n{\"x\":1}"), "{post}");
    assert!(seen
        .iter()
        .filter(|r| r.starts_with("GET /get "))
        .all(|r| r.ends_with("\r\n\r\n")));
}

#[test]
fn prompts_and_models_put_chat_requests_on_the_wire() {
    let server = raw_server(Behaviour::Ok);
    let dir = tmpdir("mix-prompts");
    let prompts = dir.join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"hi\"}\n{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"why?\"}], \"max_tokens\": 7}\n",
    )
    .unwrap();
    let url = format!("http://{}/v1/chat/completions", server.addr);
    let (r, doc) = load(&url)
        .rate("40")
        .duration("1s")
        .connections(1)
        .flag("--prompts", prompts.to_str().unwrap())
        .flag("--model", "m1")
        .flag("--model", "m2=3")
        .run_json();
    assert_eq!(r.recorder.total.completed, 40);
    assert_eq!(
        (
            doc["tags"]["m1"]["requests"].as_u64(),
            doc["tags"]["m2"]["requests"].as_u64()
        ),
        (Some(10), Some(30))
    );
    // Request k: prompt k mod 2, model by smooth weighted round-robin over 1:3, i.e. the
    // period m2 m1 m2 m2 — so m1 always meets prompt 2 (k ≡ 1 mod 4 is odd).
    let p1 = r#"[{"content":"hi","role":"user"}]"#;
    let p2 = r#"[{"content":"be brief","role":"system"},{"content":"why?","role":"user"}],"max_tokens":7"#;
    let body = |m: &str, p: &str| {
        format!(
            r#"{{"model":"{m}","messages":{p},"stream":true,"stream_options":{{"include_usage":true}}}}"#
        )
    };
    let seen = server.seen.lock().unwrap();
    let mut bodies: BTreeMap<String, usize> = BTreeMap::new();
    for req in seen.iter() {
        let (head, b) = req.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{head}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("\r\ncontent-type: application/json"),
            "{head}"
        );
        assert!(
            lower.contains(&format!("\r\ncontent-length: {}", b.len())),
            "{head}"
        );
        *bodies.entry(b.to_string()).or_default() += 1;
    }
    let expected = BTreeMap::from([
        (body("m1", p2), 10),
        (body("m2", p1), 20),
        (body("m2", p2), 10),
    ]);
    assert_eq!(bodies, expected);
}

#[test]
fn tokens_and_cost_per_model_from_the_servers_usage() {
    // serve's chat answers report usage: 1 prompt token and 5 completion tokens each.
    let server = serve(|c| {
        c.llm.ttft = (Duration::from_millis(2), Duration::from_millis(2));
        c.llm.token_interval = (Duration::from_millis(1), Duration::from_millis(1));
        c.llm.tokens = (5, 5);
    });
    let dir = tmpdir("mix-cost");
    let prompts = dir.join("p.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"hi\"}\n").unwrap();
    let url = format!("http://{}/v1/chat/completions", server.addr);
    for stream in [true, false] {
        let mut l = load(&url)
            .rate("40")
            .duration("1s")
            .connections(4)
            .flag("--prompts", prompts.to_str().unwrap())
            .flag("--model", "m1")
            .flag("--model", "m2=3")
            .flag("--price", "m1=1/2")
            .flag("--price", "m2=10/20");
        if !stream {
            l = l.switch("--no-stream");
        }
        let (_, doc) = l.run_json();
        let t1 = &doc["tags"]["m1"]["tokens"];
        assert_eq!(
            (t1["prompt"].as_u64(), t1["completion"].as_u64()),
            (Some(10), Some(50))
        );
        let t2 = &doc["tags"]["m2"]["tokens"];
        assert_eq!(
            (t2["prompt"].as_u64(), t2["completion"].as_u64()),
            (Some(30), Some(150))
        );
        // USD per million: m1 10×1 + 50×2 = 110, m2 30×10 + 150×20 = 3300.
        let cost = &doc["cost"];
        let usd = |v: &serde_json::Value| v.as_f64().unwrap();
        assert!(
            (usd(&cost["models"]["m1"]["usd"]) - 110e-6).abs() < 1e-12,
            "{cost}"
        );
        assert!((usd(&cost["total_usd"]) - 3410e-6).abs() < 1e-12, "{cost}");
        assert_eq!(doc["streaming"]["streams"], if stream { 40 } else { 0 });
        assert!(
            !doc["warnings"].to_string().contains("price"),
            "{}",
            doc["warnings"]
        );
    }
    // A price for a model the run never asked (a typo: m3) and a model without one (m2):
    // both said, not a silent $0.
    let (_, doc) = load(&url)
        .rate("40")
        .duration("1s")
        .connections(4)
        .flag("--prompts", prompts.to_str().unwrap())
        .flag("--model", "m1")
        .flag("--model", "m2=3")
        .flag("--price", "m1=1/2")
        .flag("--price", "m3=10/20")
        .run_json();
    let w = doc["warnings"].to_string();
    assert!(
        w.contains("--price m3: no request of the run was for that model"),
        "{w}"
    );
    assert!(w.contains("m2 used 180 tokens but has no --price"), "{w}");
    assert!(!w.contains("m1 used"), "{w}");
}

#[test]
fn rate_limits_are_counted_with_retry_after_per_key() {
    // 20 requests a second per key (a bucket of 20); each key is asked for 50 a second for
    // 2 s, so about 20 + 20 × 2 = 60 of its 100 are admitted and the rest get 429.
    let server = serve(|c| c.key_limit = Some((20, Duration::from_secs(1))));
    let dir = tmpdir("mix-limits");
    let targets = dir.join("keys.jsonl");
    let mut lines = String::new();
    for k in ["k1", "k2"] {
        lines.push_str(&format!(
            "{{\"url\":\"http://{}/\",\"tag\":\"{k}\",\"header\":{{\"Authorization\":[\"Bearer {k}\"]}}}}\n",
            server.addr
        ));
    }
    std::fs::write(&targets, lines).unwrap();
    let json = dir.join("s.json");
    let out = load_targets(&targets)
        .rate("100")
        .duration("2s")
        .connections(4)
        .flag("--json", json.to_str().unwrap())
        .flag("--threshold", "rate_limited<1%")
        .flag("--threshold", "p99{tag=k1}<5s")
        .run_bin(Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "rate_limited<1% fails: {text}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // Every 429 the server sent was counted as rate limited, once.
    let limited = server.stats.limited.load(Ordering::Relaxed);
    assert_eq!(doc["rate_limited"]["count"], limited);
    assert_eq!(doc["status_codes"]["429"], limited);
    for k in ["k1", "k2"] {
        let t = &doc["tags"][k];
        assert_eq!(t["requests"], 100);
        let admitted = t["status_codes"]["200"].as_u64().unwrap();
        // (A late start or end of the run adds a token or two of refill.)
        assert!((56..=64).contains(&admitted), "{k}: {admitted} admitted");
        assert_eq!(t["rate_limited"].as_u64().unwrap(), 100 - admitted);
        // A bucket refilling 20/s has a token again within 50 ms: Retry-After is its floor, 1 s.
        assert_eq!(
            t["retry_after_ms"]["max"].as_f64().map(f64::round),
            Some(1000.0)
        );
        assert_eq!(t["ratelimit_remaining"]["requests"], 0);
    }
    assert!(text.contains("Rate limited: "), "{text}");
    let verdicts = doc["thresholds"].as_array().unwrap();
    assert_eq!(verdicts[0]["pass"], false);
    assert_eq!(verdicts[1]["pass"], true);
    // A threshold on a tag the mix does not have: exit 2, before any traffic.
    let before = server.stats.requests.load(Ordering::Relaxed);
    let out = load_targets(&targets)
        .rate("100")
        .duration("1s")
        .flag("--threshold", "p99{tag=k3}<1s")
        .run_bin(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("k3"));
    assert_eq!(server.stats.requests.load(Ordering::Relaxed), before);
}

#[test]
fn group_by_header_splits_results_by_upstream_and_shows_a_failover() {
    // serve answers as upstream a and b in turn: 200 requests, 100 each, exactly.
    let server = serve(|c| c.upstreams = vec!["a".into(), "b".into()]);
    let url = format!("http://{}/", server.addr);
    let (r, doc) = load(&url)
        .rate("100")
        .duration("2s")
        .flag("--group-by-header", "X-Upstream")
        .run_json();
    let g = &doc["groups"]["x-upstream"];
    assert_eq!(
        (g["a"]["requests"].as_u64(), g["b"]["requests"].as_u64()),
        (Some(100), Some(100))
    );
    let per_second: u64 = doc["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["groups"]["a"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(per_second, 100, "the per-second counts add up");
    // The CSV time series has a column per value, adding up the same way.
    let csv = String::from_utf8(ratebench::report::csv::timeseries(&r).unwrap()).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (a, b) = (col("group:a"), col("group:b"));
    let sums = lines.fold((0u64, 0u64), |(x, y), l| {
        let f: Vec<&str> = l.split(',').collect();
        (
            x + f[a].parse::<u64>().unwrap(),
            y + f[b].parse::<u64>().unwrap(),
        )
    });
    assert_eq!(sums, (100, 100));
    // A stall over the whole run takes upstream a down: every answer comes from b.
    let server = serve(|c| {
        c.upstreams = vec!["a".into(), "b".into()];
        c.stall = Some(ratebench::serve::Stall {
            length: Duration::from_secs(60),
            at: Duration::ZERO,
            every: None,
            chance_ppm: 1_000_000,
        });
    });
    let (_, doc) = load(&format!("http://{}/", server.addr))
        .rate("100")
        .duration("1s")
        .flag("--group-by-header", "x-upstream")
        .run_json();
    let g = doc["groups"]["x-upstream"].as_object().unwrap();
    assert_eq!(g.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(g["b"]["requests"], 100);
    assert!(!doc["warnings"].to_string().contains("--group-by-header"));
    // A header no answer carries (a typo): every result under (none), and a warning says so.
    let (_, doc) = load(&url)
        .rate("50")
        .duration("1s")
        .flag("--group-by-header", "X-Upstreem")
        .run_json();
    assert_eq!(doc["groups"]["x-upstreem"]["(none)"]["requests"], 50);
    let w = doc["warnings"].to_string();
    assert!(
        w.contains("--group-by-header x-upstreem: none of the 50 answers carried that header"),
        "{w}"
    );
}

#[test]
fn a_script_tags_its_requests_and_gets_its_context_back() {
    let server = raw_server(Behaviour::Ok);
    let dir = tmpdir("mix-lua");
    let script = dir.join("tags.lua");
    std::fs::write(
        &script,
        r#"
n = 0
request = function()
  n = n + 1
  local tag = (n % 4 == 0) and "quarter" or "rest"
  return wrk.format(nil, "/" .. tag), tag, { tag = tag }
end
response = function(status, headers, body, ctx)
  if type(ctx) ~= "table" or (ctx.tag ~= "quarter" and ctx.tag ~= "rest") then
    error("response() did not get its request's context")
  end
end
"#,
    )
    .unwrap();
    let (r, doc) = load(&format!("http://{}/", server.addr))
        .rate("200")
        .duration("1s")
        .connections(4)
        .script(script.to_str().unwrap())
        .run_json();
    assert_eq!(
        r.recorder.total.error_total(),
        0,
        "{:?}",
        r.recorder.script_messages
    );
    assert_eq!(doc["tags"]["quarter"]["requests"], 50);
    assert_eq!(doc["tags"]["rest"]["requests"], 150);
    // The plan's own tag ("GET /") had no requests: not listed.
    assert_eq!(doc["tags"].as_object().unwrap().len(), 2);
    assert_eq!(
        count_starts(&server, &["GET /quarter ", "GET /rest "]),
        [50, 150]
    );
}

#[test]
fn bad_targets_are_refused_before_traffic_naming_file_and_line() {
    let server = raw_server(Behaviour::Ok);
    let dir = tmpdir("mix-bad");
    let a = server.addr;
    let cases = [
        (
            "line.jsonl",
            format!("{{\"url\":\"http://{a}/\"}}\n{{\"url\": 5}}\n"),
            "line.jsonl:2",
        ),
        (
            "origin.jsonl",
            format!("{{\"url\":\"http://{a}/\"}}\n{{\"url\":\"http://127.0.0.2:1/\"}}\n"),
            "origin.jsonl:2",
        ),
        (
            "vegeta.txt",
            format!("GET http://{a}/\nno colon here\n"),
            "vegeta.txt:2",
        ),
        (
            "many.jsonl",
            (0..65)
                .map(|i| format!("{{\"url\":\"http://{a}/\",\"tag\":\"t{i}\"}}\n"))
                .collect(),
            "65 distinct tags",
        ),
    ];
    for (name, text, expect) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = load_targets(&path)
            .rate("10")
            .duration("1s")
            .run_bin(Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 0, "no traffic");
}

#[test]
fn keys_lua_rotates_keys_and_tags_each_without_naming_it() {
    // Three keys (a blank line in the file is skipped), 10 requests a second allowed per key;
    // 15 a second for 2 s in turn is 10 per key, within every bucket: no 429, so no key rests
    // and the round-robin is exact. (Resting after a 429 depends on os.time()'s whole
    // seconds, which a test cannot pin down; `lua/keys.lua` shows the rule.)
    let server = serve(|c| c.key_limit = Some((10, Duration::from_secs(1))));
    let dir = tmpdir("mix-keys");
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "sk-one\nsk-two\n\nsk-three\n").unwrap();
    let (r, doc) = load(&format!("http://{}/", server.addr))
        .rate("15")
        .duration("2s")
        .connections(3)
        .script(concat!(env!("CARGO_MANIFEST_DIR"), "/lua/keys.lua"))
        .script_args(&[keys.to_str().unwrap()])
        .run_json();
    assert_eq!(
        r.recorder.total.error_total(),
        0,
        "{:?}",
        r.recorder.script_messages
    );
    let tags = doc["tags"].as_object().unwrap();
    assert_eq!(
        tags.keys().collect::<Vec<_>>(),
        ["key-1", "key-2", "key-3"],
        "one tag per key, and no key in the report"
    );
    // Round-robin over keys that are not resting: 30 requests, 10 per key.
    for k in ["key-1", "key-2", "key-3"] {
        assert_eq!(tags[k]["requests"], 10, "{k}");
    }
    // 10 per key in 2 s is within each bucket: nothing was limited.
    assert_eq!(doc["rate_limited"]["count"], 0);
    assert!(
        !doc.to_string().contains("sk-"),
        "keys never reach a report"
    );
}

#[test]
fn multiturn_lua_continues_conversations_and_tags_turns() {
    let server = serve(|c| {
        c.llm.ttft = (Duration::from_millis(5), Duration::from_millis(5));
        c.llm.token_interval = (Duration::from_millis(1), Duration::from_millis(1));
        c.llm.tokens = (3, 3);
    });
    // 20 requests a second, answers in ~8 ms: a conversation is usually ready, so turns go
    // 1, 2, 3, 1, 2, 3, … A turn k+1 continues a conversation whose turn k was answered,
    // so there are never more of turn k+1 than of turn k, and all 60 carry a turn.
    let (r, doc) = load(&format!("http://{}/v1/chat/completions", server.addr))
        .rate("20")
        .duration("3s")
        .connections(4)
        .script(concat!(env!("CARGO_MANIFEST_DIR"), "/lua/multiturn.lua"))
        .script_args(&["turns=3", "model=m"])
        .run_json();
    assert_eq!(
        r.recorder.total.error_total(),
        0,
        "{:?}",
        r.recorder.script_messages
    );
    let n = |t: &str| doc["tags"][t]["requests"].as_u64().unwrap_or(0);
    let (t1, t2, t3) = (n("turn-1"), n("turn-2"), n("turn-3"));
    assert_eq!(t1 + t2 + t3, 60);
    assert!(t1 >= t2 && t2 >= t3 && t3 > 0, "turns {t1} {t2} {t3}");
    for turn in ["turn-1", "turn-2", "turn-3"] {
        assert_eq!(doc["tags"][turn]["streaming"]["streams"], n(turn), "{turn}");
    }
    // Only the three turns (the plan's own "POST /v1/chat/completions" tag had no requests).
    assert_eq!(doc["tags"].as_object().unwrap().len(), 3);
}

#[test]
fn a_tokens_per_minute_limit_answers_429_with_the_wait_for_enough_tokens() {
    // 20 output tokens a minute per key, 5 tokens an answer: the bucket holds 4 answers;
    // it refills 1/3 token a second, so for the rest of a 1 s run no fifth fits, and each
    // 429 says to wait ⌈(5 − what is left) × 3⌉ = 15 s (what is left is under 0.34).
    let server = serve(|c| {
        c.key_token_limit = Some((20, Duration::from_secs(60)));
        c.llm.ttft = (Duration::from_millis(1), Duration::from_millis(1));
        c.llm.token_interval = (Duration::from_millis(1), Duration::from_millis(1));
        c.llm.tokens = (5, 5);
    });
    let dir = tmpdir("mix-tpm");
    let prompts = dir.join("p.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"hi\"}\n").unwrap();
    let (_, doc) = load(&format!("http://{}/v1/chat/completions", server.addr))
        .rate("10")
        .duration("1s")
        .connections(2)
        .flag("--prompts", prompts.to_str().unwrap())
        .flag("--model", "m")
        .flag("-H", "Authorization: Bearer k")
        .run_json();
    let t = &doc["tags"]["m"];
    assert_eq!(t["status_codes"]["200"], 4, "{t}");
    assert_eq!(t["rate_limited"], 6);
    assert_eq!(server.stats.limited.load(Ordering::Relaxed), 6);
    assert_eq!(t["ratelimit_remaining"]["tokens"], 0);
    // The request budget is not the one that ran out: no remaining-requests header at all.
    assert_eq!(
        t["ratelimit_remaining"]["requests"],
        serde_json::Value::Null
    );
    // (HDR keeps 3 significant digits: 15 s reads back within 0.1 %.)
    for end in ["min", "max"] {
        let ms = t["retry_after_ms"][end].as_f64().unwrap();
        assert!((ms - 15000.0).abs() <= 15.0, "Retry-After {end} {ms} ms");
    }
    assert_eq!(t["tokens"]["completion"], 20);
}

#[test]
fn targets_from_standard_input_one_per_line() {
    // `… | ratebench --targets -`, Vegeta's one-target-per-line form: 20 requests, the two
    // targets in turn, 10 each (tags are METHOD path).
    use std::io::Write;
    let server = serve(|_| {});
    let targets = format!("GET http://{0}/a\nGET http://{0}/b\n", server.addr);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ratebench"))
        .args(["-R20", "-n", "20", "-c2", "--targets", "-", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(targets.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["tags"]["GET /a"]["completed"], 10);
    assert_eq!(doc["tags"]["GET /b"]["completed"], 10);
}
