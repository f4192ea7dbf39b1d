//! Lua scripts with wrk's API: what arrives at the server is what the script built, hooks
//! see real responses, values cross threads by copy, and script errors are clear before the
//! run or counted during it. Every script in `lua/` runs here.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn lua(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("lua")
        .join(name)
        .display()
        .to_string()
}

fn script(dir: &Path, name: &str, text: &str) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// What a run of the binary left: exit code, stdout, stderr, and its JSON summary (None
/// when it failed before writing one).
struct Ran {
    code: i32,
    out: String,
    err: String,
    summary: Option<serde_json::Value>,
}

/// Runs the binary with `args` and `--json` to a fresh file.
fn rb(args: &[&str]) -> Ran {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::SeqCst);
    let json = tmpdir(&format!("script-run-{n}")).join("summary.json");
    let json_s = json.display().to_string();
    // (A command line that names its own --json keeps it.)
    let mut all = Vec::new();
    if !args.contains(&"--json") {
        all.extend(["--json", json_s.as_str()]);
    }
    all.extend_from_slice(args);
    let out = run_bin(&all, Duration::from_secs(30));
    Ran {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
        summary: std::fs::read_to_string(&json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok()),
    }
}

/// The accounting of the JSON summary: scheduled, completed, errors, unfinished.
fn accounting(summary: &Option<serde_json::Value>) -> [u64; 4] {
    let a = &summary.as_ref().expect("the run wrote its JSON summary")["accounting"];
    let n = |k: &str| a[k].as_u64().expect("a count");
    let got = [n("scheduled"), n("completed"), n("errors"), n("unfinished")];
    assert_eq!(got[0], got[1] + got[2] + got[3], "{a}");
    got
}

#[test]
fn post_lua_sends_method_headers_and_body_from_the_wrk_table() {
    let server = raw_server(Behaviour::Ok);
    let url = format!("http://{}/api", server.addr);
    let Ran {
        code, err, summary, ..
    } = rb(&["-R20", "-d1s", "-c2", "-t1", "-s", &lua("post.lua"), &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(accounting(&summary)[1], 20);
    let seen = server.seen.lock().unwrap();
    let body = r#"{"name":"ratebench","items":[1,2,3]}"#;
    for req in seen.iter() {
        assert!(req.starts_with("POST /api HTTP/1.1\r\n"), "{req}");
        let lower = req.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{req}"
        );
        assert!(
            lower.contains(&format!("host: {}\r\n", server.addr)),
            "{req}"
        );
        assert!(req.ends_with(&format!("\r\n\r\n{body}")), "{req}");
    }
}

#[test]
fn counter_lua_builds_a_new_path_per_request() {
    let server = raw_server(Behaviour::Ok);
    let url = format!("http://{}/", server.addr);
    let Ran { code, summary, .. } = rb(&[
        "-R16",
        "-d1s",
        "-c1",
        "-t1",
        "-s",
        &lua("counter.lua"),
        &url,
    ]);
    assert_eq!(code, 0);
    assert_eq!(accounting(&summary)[1], 16);
    // One thread: thread 0's request() runs once before the run (to check it, as wrk does),
    // so the paths on the wire are /1 … /16.
    let seen = server.seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|r| r.split(' ').nth(1).unwrap()).collect();
    let want: Vec<String> = (1..=16).map(|i| format!("/{i}")).collect();
    assert_eq!(paths, want);
}

#[test]
fn auth_lua_uses_what_the_first_response_said() {
    let server = raw_server(Behaviour::Ok); // answers "ok"
    let url = format!("http://{}/", server.addr);
    let Ran { code, err, .. } = rb(&["-R20", "-d1s", "-c1", "-t1", "-s", &lua("auth.lua"), &url]);
    assert_eq!(code, 0, "{err}");
    let seen = server.seen.lock().unwrap();
    assert!(seen[0].starts_with("GET /authenticate "), "{}", seen[0]);
    let last = seen.last().unwrap();
    assert!(
        last.starts_with("GET /resource ")
            && last
                .to_ascii_lowercase()
                .contains("authorization: bearer ok\r\n"),
        "{last}"
    );
}

#[test]
fn report_lua_done_sees_the_text_reports_numbers() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&[
        "-R100",
        "-d1s",
        "-c2",
        "-t2",
        "-s",
        &lua("report.lua"),
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let completed = accounting(&summary)[1];
    assert!(out.contains(&format!("\nrequests,{completed}\n")), "{out}");
    assert!(out.contains("\nerrors,0\n"), "{out}");
    // done()'s p50 (µs) is the text report's p50.
    let p50_text = out
        .lines()
        .find(|l| l.trim_start().starts_with("50.000%"))
        .unwrap();
    let p50_done = out.lines().find(|l| l.starts_with("50%,")).unwrap();
    let us = p50_done.trim_start_matches("50%,");
    assert_eq!(
        p50_text.split_whitespace().nth(1).unwrap(),
        format!("{us}.00us"),
        "{out}"
    );
}

#[test]
fn setup_lua_values_cross_threads_both_ways() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&["-R100", "-d1s", "-c2", "-t2", "-s", &lua("setup.lua"), &url]);
    assert_eq!(code, 0, "{err}");
    // thread:set("id") in setup() is the thread's global; thread:get in done() reads the
    // worker's final counters: their responses add up to the run's completed requests.
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("thread ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("thread 1 ") && lines[1].starts_with("thread 2 "),
        "{out}"
    );
    let responses: u64 = lines
        .iter()
        .map(|l| l.split_whitespace().nth(7).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(responses, accounting(&summary)[1]);
}

#[test]
fn pipeline_lua_sends_three_requests_per_scheduled_one() {
    let server = raw_server(Behaviour::Ok);
    let url = format!("http://{}/", server.addr);
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&[
        "-R10",
        "-d1s",
        "-c2",
        "-t1",
        "-s",
        &lua("pipeline.lua"),
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(accounting(&summary)[1], 10);
    assert_eq!(server.requests.load(Ordering::SeqCst), 30);
    assert!(out.contains("Pipelined: 30 HTTP requests in all"), "{out}");
    assert!(out.contains("Status codes: 200: 30"), "{out}");
    let seen = server.seen.lock().unwrap();
    let paths: Vec<&str> = seen
        .iter()
        .take(3)
        .map(|r| r.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(paths, ["/?foo", "/?bar", "/?baz"]);
}

#[test]
fn stop_lua_stops_its_thread() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    // 200/s for 3 s would be 600; the thread stops itself after 100 responses.
    let Ran {
        code, out, summary, ..
    } = rb(&["-R200", "-d3s", "-c2", "-t1", "-s", &lua("stop.lua"), &url]);
    assert_eq!(code, 0);
    let [scheduled, ..] = accounting(&summary);
    assert!(out.contains("(interrupted)"), "{out}");
    // 100 responses, plus whatever fell due (one every 5 ms) while the 100th was in flight
    // and the thread was stopping: a few, or up to 50 if a busy machine held the thread for
    // a quarter of a second; a thread that did not stop would reach 600.
    assert!((100..=150).contains(&scheduled), "{out}");
    assert!(server.stats.requests.load(Ordering::SeqCst) <= 150);
}

#[test]
fn delay_lua_is_a_think_time_not_a_schedule_change() {
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    // 100/s on 10 connections, each thinking 10–50 ms after a response: the schedule still
    // releases exactly 100 requests in the second.
    let Ran { code, summary, .. } = rb(&[
        "-R100",
        "-d1s",
        "-c10",
        "-t1",
        "-s",
        &lua("delay.lua"),
        &url,
    ]);
    assert_eq!(code, 0);
    assert_eq!(accounting(&summary), [100, 100, 0, 0]);

    // The think time is real: 2 connections that each rest 200 ms after a response carry at
    // most 2 × 1 s / 0.2 s = 10 of the 20 requests due in the second without waiting, so at
    // least 8 wait for a busy connection; the schedule still releases all 20.
    let dir = tmpdir("script-delay");
    let s = script(&dir, "d.lua", "function delay() return 200 end\n");
    let Ran {
        code, out, summary, ..
    } = rb(&["-R20", "-d1s", "-c2", "-t1", "-s", &s, &url]);
    assert_eq!(code, 0);
    assert_eq!(accounting(&summary), [20, 20, 0, 0]);
    let lag = out.lines().find(|l| l.starts_with("Send lag:")).unwrap();
    let waited: u64 = lag
        .split("; ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(waited >= 8, "{lag}");
}

#[test]
fn delay_returning_nonsense_is_a_script_error_not_a_panic() {
    // math.huge, NaN and more than an hour are script bugs: each response's delay() call
    // is counted as a script error message, the connection thinks for nothing, and the run
    // completes every request. A negative delay means no delay.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("script-bad-delay");
    for (name, expr, message) in [
        ("huge", "math.huge", "returned inf ms"),
        ("nan", "0/0", "returned NaN ms"),
        ("week", "7 * 24 * 3600 * 1000", "returned 604800000 ms"),
        ("negative", "-5", ""),
    ] {
        let s = script(
            &dir,
            &format!("{name}.lua"),
            &format!("function delay() return {expr} end\n"),
        );
        let Ran {
            code,
            out,
            err,
            summary,
            ..
        } = rb(&["-R20", "-d1s", "-c2", "-t1", "-s", &s, &url]);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(accounting(&summary), [20, 20, 0, 0], "{name}: {out}");
        if message.is_empty() {
            assert!(!out.contains("Script error"), "{name}: {out}");
        } else {
            assert!(
                out.contains("delay(): ") && out.contains(message),
                "{name}: {out}"
            );
        }
    }
}

#[test]
fn openai_chat_lua_builds_a_weighted_json_mix() {
    let server = serve(|c| {
        c.llm = ratebench::serve::LlmConfig {
            ttft: (Duration::from_millis(5), Duration::from_millis(5)),
            token_interval: (Duration::from_millis(1), Duration::from_millis(1)),
            tokens: (4, 4),
            tokenizer: Default::default(),
            prefill_rate: None,
            ..Default::default()
        }
    });
    let url = format!("http://{}/v1/chat/completions", server.addr);
    let s = lua("openai_chat.lua");
    let args = [
        "-R50",
        "-d1s",
        "-c10",
        "-t1",
        "-s",
        &s,
        &url,
        "--",
        "models=big:1,small:3",
        "max_tokens=16",
        "seed=7",
    ];
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(accounting(&summary)[1], 50);
    assert!(
        out.contains("Streaming: 50 event streams, 200 output tokens"),
        "{out}"
    );
    // The bodies on the wire: valid JSON, streaming, the models of the mix in its shares.
    // 400 requests, each "small" with probability 3/4: the count of "small" is binomial,
    // mean 300, standard deviation √(400 · 3/4 · 1/4) ≈ 8.7; five of those (±43) would be
    // exceeded by chance about once in two million runs. A mix that ignored the weights
    // (1:1) would give ~200.
    let raw = raw_server(Behaviour::Ok);
    let rurl = format!("http://{}/v1/chat/completions", raw.addr);
    let out = load(&rurl)
        .rate("400")
        .duration("1s")
        .connections(4)
        .script(&s)
        .script_args(&["models=big:1,small:3", "max_tokens=16", "seed=7"])
        .run_bin(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    let seen = raw.seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        400,
        "every scheduled request reached the server"
    );
    let mut models = std::collections::BTreeMap::new();
    for req in seen.iter() {
        assert!(req.starts_with("POST /v1/chat/completions "), "{req}");
        let body = req.split("\r\n\r\n").nth(1).unwrap();
        let j: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (j["stream"].as_bool(), j["max_tokens"].as_u64()),
            (Some(true), Some(16))
        );
        assert_eq!(j["messages"][0]["role"], "user");
        *models
            .entry(j["model"].as_str().unwrap().to_string())
            .or_insert(0u64) += 1;
    }
    let (big, small) = (models.get("big").copied(), models.get("small").copied());
    assert_eq!(
        big.unwrap_or(0) + small.unwrap_or(0),
        400,
        "only the mix's models: {models:?}"
    );
    let small = small.unwrap_or(0);
    assert!(small.abs_diff(300) <= 43, "1:3 mix gave {models:?}");
}

#[test]
fn thread_set_reaches_init_and_request_and_response_sees_statuses() {
    let dir = tmpdir("script-set");
    // setup() gives each thread a tag and a nested table; init() and request() use them.
    let s = script(
        &dir,
        "t.lua",
        r#"
        local n = 0
        function setup(thread) n = n + 1; thread:set("tag", "t" .. n); thread:set("cfg", { depth = { 2 } }) end
        function init(args) path = "/" .. tag .. "/" .. cfg.depth[1] end
        function request() return wrk.format(nil, path) end
        "#,
    );
    // thread:get in done() reads each worker's counters from response().
    let s2 = script(
        &dir,
        "u.lua",
        r#"
        local threads = {}
        function setup(thread) table.insert(threads, thread) end
        function init(args) ok, failed, bodies = 0, 0, 0 end
        function response(status, headers, body)
          if status == 200 then ok = ok + 1 else failed = failed + 1 end
          if body == string.rep("x", 100) then bodies = bodies + 1 end
        end
        function done(s)
          local ok, failed, bodies = 0, 0, 0
          for _, t in ipairs(threads) do
            ok = ok + t:get("ok"); failed = failed + t:get("failed"); bodies = bodies + t:get("bodies")
          end
          print(string.format("seen ok=%d failed=%d bodies=%d", ok, failed, bodies))
        end
        "#,
    );
    let server = serve(|c| c.statuses = vec![(503, 0.25)]);
    let url = format!("http://{}/", server.addr);
    let Ran { code, out, err, .. } = rb(&["-R40", "-d1s", "-c2", "-t2", "-s", &s2, &url]);
    assert!(out.contains("Status codes: 200: 30, 503: 10"), "{out}");
    assert_eq!(code, 0, "{err}");
    // 40 requests: every fourth is 503; the rest carry serve's 100-byte body of x's.
    assert!(out.contains("seen ok=30 failed=10 bodies=30"), "{out}");
    // And the paths built from setup's values: /t1/2 and /t2/2.
    let raw = raw_server(Behaviour::Ok);
    let url = format!("http://{}/", raw.addr);
    assert_eq!(rb(&["-R8", "-d1s", "-c2", "-t2", "-s", &s, &url]).code, 0);
    let seen = raw.seen.lock().unwrap();
    let mut paths: Vec<&str> = seen.iter().map(|r| r.split(' ').nth(1).unwrap()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths, ["/t1/2", "/t2/2"]);
}

#[test]
fn json_round_trips_arrays_objects_and_utf8() {
    let dir = tmpdir("script-json");
    let s = script(
        &dir,
        "j.lua",
        r#"
        local text = '{"a":[1,2.5,"x",[]],"b":{"c":"grüße ✓"},"d":{},"e":true,"f":null}'
        local v = json.decode(text)
        assert(v.a[2] == 2.5 and v.b.c == "grüße ✓" and v.e == true and v.f == json.null)
        local again = json.encode(v)
        assert(again == text, again)
        assert(json.encode({ 1, 2, 3 }) == "[1,2,3]")
        assert(json.encode({ k = "v" }) == '{"k":"v"}')
        function done() print("json ok") end
        "#,
    );
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let Ran { code, out, err, .. } = rb(&["-R2", "-d1s", "-c1", "-t1", "-s", &s, &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("json ok"), "{out}");
}

#[test]
fn script_errors_are_clear_before_traffic_and_counted_during_it() {
    let target = counting_listener();
    let url = format!("http://{}/", target.addr);
    let dir = tmpdir("script-errors");
    // A syntax error: exit 2 before any connection, naming the file and line.
    let bad = script(&dir, "syntax.lua", "x = 1\nfunction request(\n");
    let Ran { code, err, .. } = rb(&["-R10", "-d1s", "-s", &bad, &url]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("syntax.lua:") && err.lines().count() == 1,
        "{err}"
    );
    // A runtime error in init(): exit 2 with the hook, file and line.
    let init = script(
        &dir,
        "init.lua",
        "function init(args)\n  error('no config')\nend\n",
    );
    let Ran { code, err, .. } = rb(&["-R10", "-d1s", "-s", &init, &url]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("init()") && err.contains("init.lua:2") && err.contains("no config"),
        "{err}"
    );
    // A runtime error in setup().
    let setup = script(
        &dir,
        "setup.lua",
        "function setup(t)\n  t:set('f', print)\nend\n",
    );
    let Ran { code, err, .. } = rb(&["-R10", "-d1s", "-s", &setup, &url]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("setup()") && err.contains("can cross threads"),
        "{err}"
    );
    // done() prints to stdout, so it cannot share stdout with --json -.
    let Ran { code, err, .. } = rb(&[
        "-R10",
        "-d1s",
        "-s",
        &lua("report.lua"),
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--json -") && err.contains("done()"), "{err}");
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );

    // During the run: every third request() fails; the run goes on and counts them.
    let server = serve(|_| {});
    let url = format!("http://{}/", server.addr);
    let flaky = script(
        &dir,
        "flaky.lua",
        "n = 0\nfunction request()\n  n = n + 1\n  if n % 3 == 0 then error('boom ' .. n) end\n  return wrk.format()\nend\n",
    );
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&["-R30", "-d1s", "-c2", "-t1", "-s", &flaky, &url]);
    assert_eq!(code, 0, "{err}");
    let [scheduled, completed, errors, unfinished] = accounting(&summary);
    assert_eq!((scheduled, unfinished), (30, 0));
    // n counts from 2 (thread 0's check call is n = 1): of n = 2..31, ten are multiples of 3.
    assert_eq!((completed, errors), (20, 10), "{out}");
    assert!(out.contains("script 10"), "{out}");
    // One line per distinct message (each "boom n" differs), the first five kept, the
    // other five counted; Lua's message without its stack traceback.
    let messages: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Script error"))
        .collect();
    assert_eq!(messages.len(), 6, "five messages and a count: {out}");
    assert!(
        messages[0].starts_with("Script error (1×): request(): ")
            && messages[0].contains("flaky.lua:4")
            && messages[0].contains("boom 3"),
        "{out}"
    );
    assert_eq!(messages[5], "Script error: 5 more with other messages");
    assert!(!out.contains("stack traceback"), "{out}");
    // The ten requests the script never built are errors, not the generator falling behind
    // (a busy machine may still wake it late now and then: that is its own line).
    assert!(
        !out.contains("target rate not achieved — the generator fell behind"),
        "{out}"
    );
    assert!(
        out.contains(
            "10 scheduled requests were never sent (10 because the script failed before sending)"
        ),
        "{out}"
    );

    // The same message every time is one line with its count.
    let same = script(
        &dir,
        "same.lua",
        "n = 0\nfunction request()\n  n = n + 1\n  if n % 3 == 0 then error('boom') end\n  return wrk.format()\nend\n",
    );
    let Ran { code, out, .. } = rb(&["-R30", "-d1s", "-c2", "-t1", "-s", &same, &url]);
    assert_eq!(code, 0);
    let messages: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Script error"))
        .collect();
    assert_eq!(messages.len(), 1, "{out}");
    assert!(
        messages[0].starts_with("Script error (10×): request(): "),
        "{out}"
    );
}

#[test]
fn wrk2_style_scripts_see_headers_in_any_case_and_thread_fields_in_init() {
    // As wrk2's auth.lua does: read a token from the first response's headers by the name
    // the server wrote (X-Token; hyper hands it over lower-cased), then send it on every
    // request. And as its addr.lua does: print wrk.thread.addr (and id) from init().
    let server = raw_server(Behaviour::Token);
    let url = format!("http://{}/", server.addr);
    let dir = tmpdir("wrk2-style");
    let s = script(
        &dir,
        "token.lua",
        r#"
        token = nil
        function init(args)
          print(string.format("init thread %d addr %s", wrk.thread.id, tostring(wrk.thread.addr)))
        end
        function request() return wrk.format("GET", token and "/resource" or "/authenticate") end
        function response(status, headers, body)
          assert(headers["X-Token"] == "abc123", "X-Token")
          assert(headers["x-token"] == "abc123" and headers["X-TOKEN"] == "abc123", "any case")
          local names = {}
          for k in pairs(headers) do names[#names + 1] = k end
          table.sort(names)
          assert(table.concat(names, ",") == "Content-Length,X-Token", table.concat(names, ","))
          if not token then
            token = headers["X-Token"]
            wrk.headers["X-Token"] = token
          end
        end
        "#,
    );
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&["-R20", "-d1s", "-c2", "-t2", "-s", &s, &url]);
    assert_eq!(code, 0, "{err}");
    // No response() assertion failed: every request completed, none is a script error.
    assert_eq!(accounting(&summary), [20, 20, 0, 0], "{out}");
    let seen = server.seen.lock().unwrap();
    let last = seen.last().unwrap().to_ascii_lowercase();
    assert!(
        last.starts_with("get /resource ") && last.contains("x-token: abc123\r\n"),
        "{last}"
    );
    // init() printed each thread's id and address before the report's header, as wrk does
    // (stdout is a pipe here: C's stdio would have held those lines until exit).
    let addr = server.addr.to_string();
    for id in 0..2 {
        let line = format!("init thread {id} addr {addr}");
        let at = out.find(&line).unwrap_or_else(|| panic!("{line}: {out}"));
        assert!(at < out.find("Running 1s test").unwrap(), "{out}");
    }
}

#[test]
fn addr_lua_and_thread_addr_choose_where_a_thread_connects() {
    let server = serve(|_| {});
    let url = format!("http://localhost:{}/", server.addr.port());
    let Ran {
        code,
        out,
        err,
        summary,
        ..
    } = rb(&["-R20", "-d1s", "-c2", "-t2", "-s", &lua("addr.lua"), &url]);
    assert_eq!(code, 0, "{err}");
    // localhost may also resolve to ::1, where nothing listens: only 127.0.0.1 is kept.
    let uses: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("thread uses "))
        .collect();
    assert_eq!(
        uses,
        vec![format!("thread uses {}", server.addr); 2],
        "{out}"
    );
    assert_eq!(accounting(&summary)[1], 20);

    // thread.addr set to another server: the thread's requests go there.
    let a = raw_server(Behaviour::Ok);
    let b = raw_server(Behaviour::Ok);
    let dir = tmpdir("script-addr");
    let s = script(
        &dir,
        "to_b.lua",
        &format!(
            "function setup(thread)\n  thread.addr = wrk.lookup('127.0.0.1', {})[1]\nend\n",
            b.addr.port()
        ),
    );
    let url = format!("http://{}/", a.addr);
    assert_eq!(rb(&["-R10", "-d1s", "-c1", "-t1", "-s", &s, &url]).code, 0);
    assert_eq!(b.requests.load(Ordering::SeqCst), 10);
    assert_eq!(
        a.requests.load(Ordering::SeqCst),
        0,
        "the URL's server only saw the preflight connection"
    );
}
