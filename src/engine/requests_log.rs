//! `--requests-log FILE`: one line per request, for post-mortems (as h2load's `--log-file`
//! and Vegeta's results): tab-separated, streamed as the run goes, in constant memory.
//!
//! Each worker thread formats its lines into its own buffer and appends the buffer to the
//! file, under a lock, whenever it passes 64 KiB (and at the end): a thread never waits on
//! the disk per request, and memory stays a buffer per thread however long the run. Lines
//! are in completion order within a thread; threads' blocks interleave. A write that fails
//! is counted and said after the run, never fatal.

use crate::outcome::Outcome;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Columns, as the header line names them.
pub const COLUMNS: &str =
    "intended_s\tsent_s\tfirst_byte_s\tdone_s\tstatus\tbytes\terror\ttag\tconnection";

/// A thread's buffer is appended to the file past this many bytes.
const FLUSH_AT: usize = 64 * 1024;

/// The file, shared by the threads.
#[derive(Debug)]
pub struct RequestsLog {
    file: Mutex<File>,
    /// The first write error, if any.
    failed: Mutex<Option<String>>,
}

impl RequestsLog {
    /// Creates (truncates) `path` and writes the header lines.
    pub fn create(path: &std::path::Path) -> std::io::Result<RequestsLog> {
        let mut file = File::create(path)?;
        writeln!(
            file,
            "# ratebench requests log: times in seconds from the schedule's start (the \
             report's started_at); - where there is none; connection: thread.connection"
        )?;
        writeln!(file, "{COLUMNS}")?;
        Ok(RequestsLog {
            file: Mutex::new(file),
            failed: Mutex::new(None),
        })
    }

    /// The first write that failed, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().map(|f| f.clone()).unwrap_or(None)
    }

    fn append(&self, bytes: &[u8]) {
        let result = match self.file.lock() {
            Ok(mut f) => f.write_all(bytes),
            Err(_) => return,
        };
        if let Err(e) = result {
            if let Ok(mut f) = self.failed.lock() {
                f.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// One thread's side of the log.
#[derive(Debug)]
pub struct ThreadLog {
    log: Arc<RequestsLog>,
    thread: usize,
    buf: RefCell<Vec<u8>>,
}

/// Seconds from `start` to `t`, or `-`.
fn secs(out: &mut Vec<u8>, start: Instant, t: Option<Instant>) {
    match t {
        Some(t) => {
            let d = t.saturating_duration_since(start);
            let _ = write!(out, "{}.{:06}", d.as_secs(), d.subsec_micros());
        }
        None => out.push(b'-'),
    }
}

impl ThreadLog {
    /// Thread `thread`'s writer to `log`.
    pub fn new(log: Arc<RequestsLog>, thread: usize) -> ThreadLog {
        ThreadLog {
            log,
            thread,
            buf: RefCell::new(Vec::with_capacity(FLUSH_AT + 512)),
        }
    }

    /// Adds the line of `o`, whose tag is `tag`, sent on this thread's connection `conn`.
    pub fn line(&self, o: &Outcome, start: Instant, tag: &str, conn: usize) {
        let mut b = self.buf.borrow_mut();
        secs(&mut b, start, Some(o.intended));
        b.push(b'\t');
        secs(&mut b, start, o.sent);
        b.push(b'\t');
        secs(&mut b, start, o.first_byte);
        b.push(b'\t');
        secs(&mut b, start, Some(o.done));
        let (status, error) = match o.result {
            Ok(code) => (code.to_string(), "-"),
            Err(class) => ("-".to_string(), class.name()),
        };
        // (A tag is a name without tabs or newlines: `mix::valid_tag`, a model, a path.)
        let tag: String = tag
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let _ = writeln!(
            b,
            "\t{status}\t{}\t{error}\t{tag}\t{}.{conn}",
            o.bytes, self.thread
        );
        if b.len() >= FLUSH_AT {
            self.log.append(&b);
            b.clear();
        }
    }

    /// Appends what is buffered.
    pub fn flush(&self) {
        let mut b = self.buf.borrow_mut();
        if !b.is_empty() {
            self.log.append(&b);
            b.clear();
        }
    }
}

impl Drop for ThreadLog {
    fn drop(&mut self) {
        self.flush();
    }
}
