//! Writing an interval log as the run goes: the standard header, one line per second and
//! distribution, ratebench's counters in `#[ratebench-…]` comments, and the whole-run
//! totals at the end.

use super::{
    stream_hists, COUNTS, TAG_CONNECT_TCP, TAG_CONNECT_TLS, TAG_CORRECTED, TAG_READ_LAG,
    TAG_RELEASE_LAG, TAG_SEND_LAG, TAG_TTFT, TAG_UNCORRECTED, TOTALS,
};
use crate::record::histogram::Hist;
use crate::record::{Interval, IntervalStats};
use crate::report::json::{self, SecondDoc};
use crate::report::Summary;
use crate::run::{RunMeta, RunResult};
use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes an interval log as the run goes, one second at a time.
pub struct HlogWriter {
    out: io::BufWriter<Box<dyn Write>>,
    serializer: V2DeflateSerializer,
    bytes: Vec<u8>,
    text: String,
    /// The first write error; later writes are skipped and it is reported at the end.
    error: Option<io::Error>,
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl HlogWriter {
    /// Creates the file (`-`: standard output, e.g. for `kubectl logs`) and writes the
    /// standard header lines.
    pub fn create(path: &Path, meta: &RunMeta) -> io::Result<HlogWriter> {
        let sink: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(std::fs::File::create(path)?)
        };
        let mut w = HlogWriter {
            out: io::BufWriter::new(sink),
            serializer: V2DeflateSerializer::new(),
            bytes: Vec::new(),
            text: String::new(),
            error: None,
        };
        let now = unix_s(SystemTime::now());
        let header = format!(
            "#[Histogram log format version 1.3]\n\
             #[Written by ratebench {}: latencies in microseconds; Tag=corrected is from each request's \
             intended send time, Tag=uncorrected from its actual send]\n\
             #[StartTime: {now:.3} (seconds since epoch)]\n\
             #[BaseTime: {now:.3} (seconds since epoch)]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            env!("CARGO_PKG_VERSION")
        );
        w.out.write_all(header.as_bytes())?;
        // The plan up front (the totals at the end repeat it): a shard's log names its plan
        // even if the process dies before the end.
        let plan = serde_json::json!({
            "plan_id": meta.plan_id,
            "shard": meta.shard,
            "shards": meta.shards,
            "url": meta.url,
            "rate_per_s": meta.rate.as_f64(),
            "stages": meta.stages,
            "arrival": meta.arrival,
            "seed": meta.seed,
            "duration_s": meta.duration.as_secs_f64(),
        });
        writeln!(w.out, "#[ratebench-plan {plan}]")?;
        Ok(w)
    }

    fn line(&mut self, tag: &str, h: &Hist, start: f64, length: f64) {
        if self.error.is_some() {
            return;
        }
        self.bytes.clear();
        self.text.clear();
        if let Err(e) = self.serializer.serialize(h, &mut self.bytes) {
            self.error = Some(io::Error::other(format!("serializing a histogram: {e:?}")));
            return;
        }
        base64::engine::general_purpose::STANDARD.encode_string(&self.bytes, &mut self.text);
        let r = writeln!(
            self.out,
            "Tag={tag},{start:.3},{length:.3},{:.3},{}",
            h.max() as f64 / 1000.0,
            self.text
        );
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    /// Writes one second: the corrected and uncorrected histograms and the counters, and
    /// flushes.
    pub fn interval(&mut self, iv: &Interval, stats: &IntervalStats) {
        let start = f64::from(iv.index);
        self.line(TAG_CORRECTED, &iv.corrected, start, 1.0);
        self.line(TAG_UNCORRECTED, &iv.uncorrected, start, 1.0);
        if let Some(t) = &iv.ttft {
            self.line(TAG_TTFT, t, start, 1.0);
        }
        if self.error.is_none() {
            let json = serde_json::to_string(&SecondDoc::of(stats)).expect("plain data serializes");
            // Flushed each second (on the coordinator, off the hot path), so the log can be
            // followed as the run goes: `tail -f`, `kubectl logs`, benches/soak.sh.
            if let Err(e) = writeln!(self.out, "{COUNTS}{json}]").and_then(|_| self.out.flush()) {
                self.error = Some(e);
            }
        }
    }

    /// Writes the whole-run lag histograms and totals, and flushes.
    pub fn finish(mut self, r: &RunResult, s: &Summary) -> io::Result<()> {
        let len = r.load_duration.as_secs_f64();
        self.line(TAG_SEND_LAG, &r.recorder.send_lag, 0.0, len);
        self.line(TAG_RELEASE_LAG, &r.recorder.release_lag, 0.0, len);
        self.line(TAG_READ_LAG, &r.recorder.read_lag, 0.0, len);
        self.line(TAG_CONNECT_TCP, &r.recorder.connect_tcp, 0.0, len);
        self.line(TAG_CONNECT_TLS, &r.recorder.connect_tls, 0.0, len);
        if let Some(st) = &r.recorder.stream {
            for (tag, h) in stream_hists(st) {
                self.line(tag, h, 0.0, len);
            }
        }
        // Each request tag's corrected latency over the whole run: Tag=tag:NAME.
        for t in &r.recorder.tags {
            self.line(&super::tag_label(&t.name), &t.corrected, 0.0, len);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut doc = json::document(r, s, &[]);
        doc.series.clear(); // the per-second rows are above, one per interval
        let json = serde_json::to_string(&doc).expect("plain data serializes");
        writeln!(self.out, "{TOTALS}{json}]")?;
        self.out.flush()
    }
}
