//! `ratebench demo`: the newcomer's tour — a stalling server, a short run, the numbers explained.

use super::*;

/// `ratebench demo`: a stalling built-in server and a short test against it.
pub(super) fn demo(args: &DemoArgs) -> Result<()> {
    let stall_at = Duration::from_secs(2);
    let stall_for = Duration::from_secs(1);
    let server = serve::spawn(ServeConfig {
        delay: Duration::from_micros(100),
        stall: Some(Stall {
            length: stall_for,
            at: stall_at,
            every: None,
            chance_ppm: 1_000_000,
        }),
        ..ServeConfig::default()
    })?;
    // The demo's run, spelled as a user would type it, so every default applies.
    let url = format!("http://{}/", server.addr);
    let argv = [
        "ratebench",
        "-R",
        &args.rate,
        "-d",
        &args.duration,
        "-c20",
        "-t1",
        &url,
    ];
    let run_args = <Cli as clap::Parser>::try_parse_from(argv)
        .map_err(|e| ConfigError::Missing(format!("demo arguments: {e}")))?
        .run;
    let command = run_args.validate()?;
    out_line(&format!(
        "ratebench demo: a built-in server on {} answers in ~100us, but {}s after it starts it \
         freezes every response for {}s.\nratebench keeps sending {} requests/s through the \
         freeze (open loop) and times each from when it was due.\n",
        server.addr,
        stall_at.as_secs(),
        stall_for.as_secs(),
        command.plan.rate
    ));
    let result = load_result(&command)?;
    let c = &result.recorder.corrected;
    let u = &result.recorder.uncorrected;
    let p = |h: &Hist, q: f64| fmt_us(percentile(h, q) as f64);
    // The words follow the numbers: of the requests due during the freeze, only those
    // already on the wire when it began (at most one per connection) are slow when timed
    // from the actual send; the rest waited for a connection before they were sent.
    let due_in_freeze = (command.plan.rate.as_f64() * stall_for.as_secs_f64()).round() as u64;
    let in_flight = command.plan.connections;
    let total = result.recorder.total.scheduled.max(1);
    out_line(&format!(
        "\nWhat this shows:\n  corrected   p99 {:>10}  p99.9 {:>10}  — what users saw: the ~{due_in_freeze} requests \
         due during the freeze ({:.0}% of {total}) waited for it to end\n  uncorrected p99 {:>10}  p99.9 {:>10}  — \
         what a closed-loop tool reports: timed from the actual send, only the ≤ {in_flight} requests already in \
         flight when the freeze began ({:.1}%) show it, at the very top of the distribution; the other \
         ~{} waited unseen",
        p(c, 99.0),
        p(c, 99.9),
        100.0 * due_in_freeze as f64 / total as f64,
        p(u, 99.0),
        p(u, 99.9),
        100.0 * in_flight as f64 / total as f64,
        due_in_freeze.saturating_sub(in_flight as u64)));
    if Summary::of(&result)
        .warnings
        .iter()
        .any(|w| w.contains("generator fell behind"))
    {
        out_line(
            "  (The generator-lag warning above comes from the end of the freeze: the queued \
             requests and their answers all arrive at once, on a machine that also runs the demo's \
             server. In your own tests, take that warning seriously: it means the latencies \
             include ratebench's own delay.)",
        );
    }
    out_line(
        "Run your own: `ratebench serve --stall 1s@5s` in one shell, \
         `ratebench -R1000 -d10s -L http://127.0.0.1:8080/` in another.",
    );
    Ok(())
}
