//! One connection slot of a worker thread: keep a connection open (re-opening it when the
//! server closed it or a request failed on it), take the next due request, send it (the
//! fixed request or what the script builds), and turn what happened into an `Outcome`.
//!
//! Every request a slot takes ends in exactly one `Outcome`: a status, or an error class
//! (connect, read, write, timeout, protocol, script). Faults are data, never `Err`.
//!
//! Used by `engine::worker`, one task per connection.

use super::conn::Connector;
use super::dispatch::{Job, Shared};
use super::exchange::{classify, exchange, Progress};
use crate::clock;
use crate::outcome::{ErrorClass, Outcome};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One connection slot's loop: keep a connection, take jobs, record outcomes.
pub(super) async fn connection(
    shared: Rc<Shared>,
    id: usize,
    connector: Arc<Connector>,
    timeout: Duration,
) {
    let mut sender = None;
    if let Ok(Ok((s, timing))) = tokio::time::timeout(timeout, connector.connect_timed()).await {
        sender = Some(s);
        shared.open.set(shared.open.get() + 1);
        let mut rec = shared.recorder.borrow_mut();
        rec.connects += 1;
        rec.connected(timing.tcp, timing.tls);
    }
    shared.connecting.set(shared.connecting.get() - 1);
    if shared.connecting.get() == 0 {
        shared.connected.notify_one();
    }
    while let Some(job) = shared.next_job(id).await {
        let outcome = attempt(&shared, &mut sender, job, &connector, timeout).await;
        shared.finish(&outcome);
        // A script's delay(): this connection thinks before its next request; the
        // schedule does not wait (due requests go to other connections, or queue).
        let think = shared.script.as_ref().map(|s| s.delay());
        match think {
            Some(Ok(Some(d))) if !d.is_zero() => tokio::time::sleep(d).await,
            Some(Err(m)) => shared.recorder.borrow_mut().script_message(m.to_string()),
            _ => {}
        }
    }
}

/// Drops a broken or abandoned connection.
pub(super) fn close_conn(shared: &Shared, sender: &mut Option<SendRequest<Full<Bytes>>>) {
    if sender.take().is_some() {
        shared.open.set(shared.open.get() - 1);
    }
}

/// Sends one request on this slot's connection (re-opening it if needed).
pub(super) async fn attempt(
    shared: &Shared,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    job: Job,
    connector: &Connector,
    timeout: Duration,
) -> Outcome {
    // What to send: the fixed request, or what the script builds (building is not I/O,
    // and never moves the schedule).
    let scripted = match &shared.script {
        None => None,
        Some(sc) => match sc.requests() {
            Ok(list) => Some(list),
            Err(m) => {
                shared.recorder.borrow_mut().script_message(m.to_string());
                return Outcome {
                    intended: job.intended,
                    sent: None,
                    conn_was_free: false,
                    done: Instant::now(),
                    result: Err(ErrorClass::Script),
                    bytes: 0,
                    first_byte: None,
                    stream: None,
                };
            }
        },
    };
    let usable = match sender.as_mut() {
        Some(s) => s.ready().await.is_ok(),
        None => false,
    };
    let mut free = job.free;
    if !usable {
        close_conn(shared, sender);
        if free {
            shared.recorder.borrow_mut().reconnect_waits += 1;
        }
        free = false; // time spent connecting is not the generator's send lag
        match tokio::time::timeout(timeout, connector.connect_timed()).await {
            Ok(Ok((s, timing))) => {
                *sender = Some(s);
                shared.open.set(shared.open.get() + 1);
                let mut rec = shared.recorder.borrow_mut();
                rec.connects += 1;
                rec.reconnects += 1;
                rec.connected(timing.tcp, timing.tls);
            }
            _ => {
                return Outcome {
                    intended: job.intended,
                    sent: None,
                    conn_was_free: false,
                    done: Instant::now(),
                    result: Err(ErrorClass::Connect),
                    bytes: 0,
                    first_byte: None,
                    stream: None,
                }
            }
        }
    }
    let s = sender.as_mut().expect("connected above");
    let sent = Instant::now();
    shared.recorder.borrow_mut().sent();
    if shared.window_end.get().is_some_and(|end| sent < end) {
        shared.sent_in_window.set(shared.sent_in_window.get() + 1);
    }
    let awaited = shared.stay_awake_for_response(sent);
    let mut progress = Progress::default();
    let gap = |gap| shared.recorder.borrow_mut().record_gap(gap);
    let mut script_failed = None;
    let work = async {
        let Some(list) = &scripted else {
            return exchange(
                s,
                connector.request(),
                &shared.rule,
                &mut progress,
                false,
                gap,
            )
            .await;
        };
        let script = shared
            .script
            .as_ref()
            .expect("scripted requests come from a script");
        let collect = script.wants_response();
        let (mut bytes, mut first_byte) = (0, None);
        // Several requests in one string (wrk's pipelining idiom) go out in order on this
        // connection; each response is counted, the last one ends the scheduled request.
        for (i, r) in list.iter().enumerate() {
            if i > 0 {
                s.ready().await?;
                let mut rec = shared.recorder.borrow_mut();
                rec.status[usize::from(progress.status).min(999)] += 1;
                rec.extra_requests += 1;
            }
            progress = Progress::default();
            exchange(s, r.to_request(), &shared.rule, &mut progress, collect, gap).await?;
            bytes += progress.bytes;
            first_byte = first_byte.or(progress.first_byte);
            if let Some((headers, body)) = progress.collected.take() {
                if let Err(m) = script.response(progress.status, &headers, &body) {
                    script_failed = Some(m);
                }
            }
        }
        progress.bytes = bytes;
        progress.first_byte = first_byte;
        Ok(())
    };
    let result = tokio::time::timeout_at((sent + timeout).into(), work).await;
    let done = Instant::now();
    if awaited {
        clock::response_arrived();
    }
    if matches!(result, Ok(Ok(()))) {
        shared.response_times.borrow_mut().record(done - sent);
    }
    let result = match result {
        Ok(Ok(())) if script_failed.is_some() => {
            let m = script_failed.take().expect("checked");
            shared.recorder.borrow_mut().script_message(m.to_string());
            Err(ErrorClass::Script)
        }
        // A stream the token rule could not read is a protocol error, measured as far as it went.
        Ok(Ok(())) if progress.stream.is_some_and(|s| s.malformed) => Err(ErrorClass::Protocol),
        Ok(Ok(())) => Ok(progress.status),
        Ok(Err(e)) => {
            close_conn(shared, sender);
            // An event stream cut off mid-way is a broken stream, not just a lost read.
            if progress.stream.is_some() {
                Err(ErrorClass::Protocol)
            } else {
                Err(classify(&e))
            }
        }
        Err(_elapsed) => {
            // HTTP/1.1 cannot cancel a request: the connection is abandoned with it.
            close_conn(shared, sender);
            Err(ErrorClass::Timeout)
        }
    };
    Outcome {
        intended: job.intended,
        sent: Some(sent),
        conn_was_free: free,
        done,
        result,
        bytes: progress.bytes,
        first_byte: progress.first_byte,
        stream: progress.stream,
    }
}
