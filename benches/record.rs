//! The recording hot path: what each completed request costs in `Recorder::record`
//! (three HDR histograms plus counters), and the schedule arithmetic per request.
//!
//! Run: `cargo bench --bench record`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ratebench::outcome::Outcome;
use ratebench::pacer::Rate;
use ratebench::pacer::Schedule;
use ratebench::record::Recorder;
use std::time::{Duration, Instant};

fn record(c: &mut Criterion) {
    let t0 = Instant::now();
    // A spread of latencies (100 µs .. ~100 ms) so every bucket range is touched.
    let outcomes: Vec<Outcome> = (0..1024u64)
        .map(|i| {
            let intended = t0 + Duration::from_micros(i * 100);
            let sent = intended + Duration::from_micros(i % 50);
            Outcome {
                intended,
                sent: Some(sent),
                conn_was_free: i % 3 != 0,
                done: sent + Duration::from_micros(100 + (i * i * 97) % 100_000),
                result: Ok(200),
                bytes: 200,
                first_byte: None,
                stream: None,
                meta: Default::default(),
                cause: None,
            }
        })
        .collect();
    // The engine always keeps at least one tag: its cost is part of recording.
    let mut rec = Recorder::with_tags(&["GET /".to_string()]);
    let mut i = 0;
    c.bench_function("record one outcome", |b| {
        b.iter(|| {
            rec.record(black_box(&outcomes[i & 1023]));
            i += 1;
        })
    });
    let s = black_box(Schedule::for_thread(Rate::new(2500, 1), 3, 1));
    let mut n = 0u64;
    c.bench_function("schedule due time", |b| {
        b.iter(|| {
            n += 1;
            black_box(s.due(black_box(n)))
        })
    });
    let a = Recorder::new();
    c.bench_function("merge two recorders", |b| {
        b.iter(|| {
            let mut m = Recorder::new();
            m.merge(black_box(&a));
            m
        })
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
