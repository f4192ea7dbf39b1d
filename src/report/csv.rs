//! CSV outputs: the percentile table (`--csv`) and the per-second time series
//! (`--csv-timeseries`). Headers on the first line; latencies in milliseconds, rates in
//! requests per second, counts as counts.
//!
//! Used by `app` after a run or a `report` merge.

use crate::outcome::ErrorClass;
use crate::record::histogram::percentile;
use crate::run::RunResult;

/// The percentiles in the `--csv` table.
pub const TABLE_PERCENTILES: [f64; 19] = [
    0.0, 10.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9,
    99.99, 99.999, 100.0,
];

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// `percentile,corrected_ms,uncorrected_ms`, one row per entry of `TABLE_PERCENTILES`; with
/// several tags, one more column per tag, `tag:NAME_ms` (that tag's corrected latency).
pub fn percentiles(r: &RunResult) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let tags = if r.recorder.tags.len() > 1 {
        &r.recorder.tags[..]
    } else {
        &[]
    };
    let mut header = vec![
        "percentile".to_string(),
        "corrected_ms".into(),
        "uncorrected_ms".into(),
    ];
    header.extend(tags.iter().map(|t| format!("tag:{}_ms", t.name)));
    w.write_record(&header)?;
    let (c, u) = (&r.recorder.corrected, &r.recorder.uncorrected);
    for p in TABLE_PERCENTILES {
        let mut row = vec![format!("{p}"), ms(percentile(c, p)), ms(percentile(u, p))];
        row.extend(tags.iter().map(|t| ms(percentile(&t.corrected, p))));
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// One row per second: intended and achieved rate, completed, errors by class, bytes and
/// corrected latency percentiles of the requests that ended in that second.
pub fn timeseries(r: &RunResult) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["second", "intended_per_s", "achieved_per_s", "completed"];
    let error_cols: Vec<String> = ErrorClass::ALL
        .iter()
        .map(|e| format!("errors_{}", e.name()))
        .collect();
    header.extend(error_cols.iter().map(String::as_str));
    header.extend([
        "bytes",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p99_9_ms",
        "max_ms",
        "uncorrected_p99_ms",
        "tokens",
        "ttft_p99_ms",
        "rate_limited",
    ]);
    // `--group-by-header`: one column per value seen, completed responses per second.
    let mut groups: Vec<&str> = Vec::new();
    for s in &r.intervals {
        for (v, _) in &s.groups {
            if !groups.contains(&v.as_str()) {
                groups.push(v);
            }
        }
    }
    let group_cols: Vec<String> = groups.iter().map(|v| format!("group:{v}")).collect();
    header.extend(group_cols.iter().map(String::as_str));
    w.write_record(&header)?;
    for s in &r.intervals {
        let mut row = vec![
            s.index.to_string(),
            s.counts.scheduled.to_string(),
            s.counts.sent.to_string(),
            s.counts.completed.to_string(),
        ];
        row.extend(s.counts.errors.iter().map(|e| e.to_string()));
        row.extend([
            s.counts.bytes.to_string(),
            ms(s.p50_us),
            ms(s.p90_us),
            ms(s.p99_us),
            ms(s.p999_us),
            ms(s.max_us),
            ms(s.uncorrected_p99_us),
            s.counts.tokens.to_string(),
            ms(s.ttft_p99_us),
            s.counts.rate_limited.to_string(),
        ]);
        row.extend(groups.iter().map(|g| {
            s.groups
                .iter()
                .find(|(v, _)| v == g)
                .map_or(0, |(_, n)| *n)
                .to_string()
        }));
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
