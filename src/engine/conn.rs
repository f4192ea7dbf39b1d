//! One connection: connect (TCP, then TLS for https, then HTTP/1.1 or HTTP/2) and build
//! the requests sent on it.
//!
//! HTTP/1.1 is spoken by `engine::h1` and HTTP/2 by `engine::http2`, both directly: no
//! pool, no retries, no redirects — each scheduled request is exactly one attempt on the
//! wire. A connection that the server closes, or on which a request failed, is dropped; the
//! next request on it re-opens it, and the reconnect time counts against that request's
//! latency.
//!
//! Sending and reading live in `engine::exchange`, TLS settings in `engine::tls`.
//!
//! Used by `engine::slot` (the request loop) and `engine` (the preflight connect).

use super::h1::{H1Conn, Wire};
use super::http2::{self, H2Conn, H2Error, H2Request};
use super::plan::{default_tag, Plan};
use super::stamp::{Arrival, StampedTcp};
use super::tls::{tls_config, Stream};
use crate::error::{invalid, ConfigError};
use crate::mix::{swrr_order, RequestSpec};
use crate::outcome::Cause;
use crate::prompts::Prompts;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Uri};
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a connection could not be opened, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed: check the address and that the server is running.
    #[error("cannot connect to {addr}: {source}")]
    Tcp {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS handshake failed (often an untrusted certificate: `-k` skips verification).
    #[error("TLS handshake with {addr} failed: {source}{hint}")]
    Tls {
        /// The address tried.
        addr: SocketAddr,
        /// The handshake error.
        source: io::Error,
        /// A suggestion, when one applies.
        hint: &'static str,
    },
    /// No connection within `--connect-timeout` (TCP and TLS together): is the target
    /// overloaded, or the address right?
    #[error(
        "no connection to {addr} within --connect-timeout ({limit:?}), waiting for the TCP \
         connect and any TLS handshake"
    )]
    Timeout {
        /// The address tried.
        addr: SocketAddr,
        /// The limit.
        limit: std::time::Duration,
    },
    /// No connection within `--timeout` (when it is the shorter of the two limits).
    #[error("no connection to {addr} within --timeout ({limit:?})")]
    Slow {
        /// The address tried.
        addr: SocketAddr,
        /// The limit.
        limit: std::time::Duration,
    },
    /// `--http2` over https, and the server did not pick h2 in ALPN.
    #[error(
        "{addr} does not speak HTTP/2: ALPN offered only h2 and the server chose {chose} \
         (drop --http2 to test it over HTTP/1.1)"
    )]
    NoH2 {
        /// The address tried.
        addr: SocketAddr,
        /// What the server picked.
        chose: String,
    },
    /// `--http2`: the HTTP/2 connection preface, SETTINGS or PING went wrong.
    #[error("HTTP/2 with {addr} failed: {source}{hint}")]
    H2 {
        /// The address tried.
        addr: SocketAddr,
        /// What went wrong.
        source: H2Error,
        /// A suggestion, when one applies.
        hint: &'static str,
    },
}

impl ConnectError {
    /// The same failure, to report elsewhere (an OS error keeps its kind and its words).
    pub fn again(&self) -> ConnectError {
        let io = |e: &io::Error| io::Error::new(e.kind(), e.to_string());
        match self {
            ConnectError::Tcp { addr, source } => ConnectError::Tcp {
                addr: *addr,
                source: io(source),
            },
            ConnectError::Tls { addr, source, hint } => ConnectError::Tls {
                addr: *addr,
                source: io(source),
                hint,
            },
            ConnectError::Timeout { addr, limit } => ConnectError::Timeout {
                addr: *addr,
                limit: *limit,
            },
            ConnectError::Slow { addr, limit } => ConnectError::Slow {
                addr: *addr,
                limit: *limit,
            },
            ConnectError::NoH2 { addr, chose } => ConnectError::NoH2 {
                addr: *addr,
                chose: chose.clone(),
            },
            ConnectError::H2 { addr, source, hint } => ConnectError::H2 {
                addr: *addr,
                source: source.clone(),
                hint,
            },
        }
    }

    /// Why, for the report's error causes.
    pub fn cause(&self) -> Cause {
        match self {
            ConnectError::Tcp { source, .. } => Cause::Io(source.kind()),
            ConnectError::Tls { .. } => Cause::Reason("TLS handshake failed"),
            ConnectError::Timeout { .. } => Cause::Reason("no connection within --connect-timeout"),
            ConnectError::Slow { .. } => Cause::Reason("no connection within --timeout"),
            ConnectError::NoH2 { .. } => Cause::Reason("the server did not pick h2 in ALPN"),
            ConnectError::H2 { source, .. } => source.cause(),
        }
    }
}

/// An open connection: an HTTP/1.1 sender, or an HTTP/2 one.
pub enum Link {
    /// HTTP/1.1: one request at a time.
    H1(H1Conn),
    /// HTTP/2: many streams.
    H2(H2Link),
}

/// An open HTTP/2 connection.
pub struct H2Link {
    /// Opens streams (clones share the connection).
    pub sender: H2Conn,
    /// When the kernel stamps receives: the arrival of the last bytes read.
    pub arrival: Option<Arrival>,
}

impl H2Link {
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (`usize::MAX` when it set none).
    pub fn server_limit(&self) -> usize {
        self.sender.server_limit()
    }
}

/// How long opening one connection took, phase by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectTiming {
    /// The TCP connect.
    pub tcp: std::time::Duration,
    /// The TLS handshake, for https.
    pub tls: Option<std::time::Duration>,
}

/// Opens connections to the target and builds its requests.
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    template: RequestTemplate,
    /// TCP connect plus TLS handshake limit (`--connect-timeout`).
    connect_timeout: std::time::Duration,
    /// What the first TLS handshake agreed on (version and cipher), for the report.
    negotiated: Arc<std::sync::OnceLock<String>>,
    /// `--http2`.
    http2: bool,
    /// Ask the kernel to stamp receives.
    kernel_stamps: bool,
    /// Requests go out through a worker's io_uring: ask the kernel to stamp sends too.
    stamp_sends: bool,
    /// Send refused (unprocessed) requests again (not `--no-retry`).
    retry: bool,
    /// `--targets` or `--prompts`: the kinds of request, chosen by sequence number.
    mix: Option<Arc<MixTemplates>>,
    /// The lowest SETTINGS_MAX_CONCURRENT_STREAMS a server announced (`usize::MAX`: none).
    server_streams: Arc<AtomicUsize>,
    /// The SETTINGS_MAX_CONCURRENT_STREAMS a server announced last (`usize::MAX`: none).
    server_streams_last: Arc<AtomicUsize>,
}

/// The kinds of request of a mix and which one request k is.
struct MixTemplates {
    /// One per target (or per model).
    templates: Vec<RequestTemplate>,
    /// Each template's tag index.
    tags: Vec<u16>,
    /// Each template's model (`--prompts`).
    models: Vec<String>,
    /// One period of smooth weighted round-robin over the templates.
    order: Vec<u16>,
    /// Bodies built per request from prompt k (`--prompts`, `--input-tokens`).
    prompts: Option<Arc<Prompts>>,
    /// The run's seed (prompts made per request draw from it).
    seed: u64,
}

impl MixTemplates {
    /// Which template request `seq` uses: its place in the round-robin's period.
    fn kind(&self, seq: u64) -> usize {
        usize::from(self.order[(seq % self.order.len() as u64) as usize])
    }
}

/// The parts of the request sent every time (no script).
#[derive(Clone)]
struct RequestTemplate {
    method: hyper::Method,
    uri: Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
    /// For HTTP/2: `scheme://authority` (the Host header's authority when one is given).
    origin: String,
    /// For HTTP/2: the request head's HPACK block (the absolute URI's parts as
    /// pseudo-headers, without the headers HTTP/2 forbids), and whether it says the
    /// content-length.
    h2: Option<(Bytes, bool)>,
    /// For HTTP/1.1: the request line and headers, without the blank line that ends them.
    wire_head: Vec<u8>,
    /// For HTTP/1.1: the whole request, head and body, when the body is the same every
    /// time (not built per request by `--prompts`).
    wire: Option<Bytes>,
    /// It says `Connection: close` (HTTP/1.1: its connection is not reused).
    close: bool,
}

impl Connector {
    /// A connector for the plan's target at the resolved `addr`; a host name that cannot
    /// be a TLS server name or a Host header is bad input.
    pub fn new(config: &Plan, addr: SocketAddr) -> Result<Connector, ConfigError> {
        let t = &config.target;
        let tls = if t.tls {
            let name = ServerName::try_from(t.host.clone()).map_err(|e| {
                invalid(
                    "URL",
                    &t.url,
                    format!("{:?} is not a TLS server name: {e}", t.host),
                )
            })?;
            let tls = tls_config(&config.tls, config.http2).map_err(ConfigError::Missing)?;
            Some((TlsConnector::from(tls), name))
        } else {
            None
        };
        let template =
            RequestTemplate::new(config, &config.method, &t.path, &[], Some(&config.body))
                .map_err(|e| invalid("URL", &t.url, e))?;
        let tags = config.tag_names();
        let tag_of = |name: &str| tags.iter().position(|t| t == name).unwrap_or(0) as u16;
        let mix = if let Some(p) = &config.prompts {
            let path = &t.path;
            let json = [("Content-Type".to_string(), "application/json".to_string())];
            let mut templates = Vec::new();
            for (model, _) in &p.models {
                let tpl = RequestTemplate::new(config, &hyper::Method::POST, path, &json, None)
                    .map_err(|e| invalid("--model", model, e))?;
                templates.push(tpl);
            }
            let weights: Vec<u64> = p.models.iter().map(|(_, w)| *w).collect();
            Some(Arc::new(MixTemplates {
                templates,
                tags: p.models.iter().map(|(m, _)| tag_of(m)).collect(),
                models: p.models.iter().map(|(m, _)| m.clone()).collect(),
                order: swrr_order(&weights).map_err(|e| invalid("--model", "", e))?,
                prompts: Some(p.clone()),
                seed: config.seed,
            }))
        } else if !config.mix.is_empty() {
            let mut templates = Vec::new();
            for spec in &config.mix {
                templates.push(template_of(config, spec)?);
            }
            let weights: Vec<u64> = config.mix.iter().map(|m| m.weight).collect();
            Some(Arc::new(MixTemplates {
                templates,
                tags: config.mix.iter().map(|m| tag_of(&default_tag(m))).collect(),
                models: Vec::new(),
                order: swrr_order(&weights).map_err(|e| invalid("--targets", "", e))?,
                prompts: None,
                seed: config.seed,
            }))
        } else {
            None
        };
        Ok(Connector {
            addr,
            tls,
            connect_timeout: config.connect_timeout,
            negotiated: Arc::default(),
            http2: config.http2,
            kernel_stamps: config.kernel_stamps,
            // HTTP/1.1 in clear: a request is the bytes written, so the kernel's stamp of
            // them is when it left (TLS records and HTTP/2 frames are not one request each).
            stamp_sends: config.kernel_stamps && !config.http2 && !config.target.tls,
            retry: config.retry,
            server_streams: Arc::new(AtomicUsize::new(usize::MAX)),
            server_streams_last: Arc::new(AtomicUsize::new(usize::MAX)),
            template,
            mix,
        })
    }

    /// The tag of request `seq` (0 without a mix).
    pub fn tag_of(&self, seq: u64) -> u16 {
        self.mix.as_ref().map_or(0, |m| m.tags[m.kind(seq)])
    }

    /// The prompt tokens of request `seq` by the run's tokenizer (`--prompts`,
    /// `--input-tokens`; a script's requests are its own).
    pub fn input_tokens(&self, seq: u64) -> Option<u64> {
        let m = self.mix.as_ref()?;
        m.prompts.as_ref()?.input_tokens(m.seed, seq)
    }

    /// The template and body of request `seq`.
    fn pick(&self, seq: u64) -> (&RequestTemplate, Bytes, u16) {
        match &self.mix {
            None => (&self.template, self.template.body.clone(), 0),
            Some(m) => {
                let i = m.kind(seq);
                let t = &m.templates[i];
                let body = match &m.prompts {
                    Some(p) => p.body(m.seed, seq, &m.models[i]),
                    None => t.body.clone(),
                };
                (t, body, m.tags[i])
            }
        }
    }

    /// What was negotiated with the target: the protocol, and for https the TLS version and
    /// cipher of the first handshake; for HTTP/2, the server's stream limit.
    pub fn negotiated(&self) -> String {
        let protocol = if self.http2 { "HTTP/2" } else { "HTTP/1.1" };
        let on = match self.negotiated.get() {
            Some(tls) => format!("{protocol} over {tls}"),
            None if self.tls.is_some() => format!("{protocol} over TLS"),
            None if self.http2 => "HTTP/2 (h2c, cleartext)".into(),
            None => "HTTP/1.1 (cleartext)".into(),
        };
        let last = self.server_streams_last.load(Ordering::Relaxed);
        match self.server_max_streams() {
            Some(n) if self.http2 && last != n && last != usize::MAX => {
                format!("{on}; server allows {last} streams per connection (lowest announced {n})")
            }
            Some(n) if self.http2 => format!("{on}; server allows {n} streams per connection"),
            None if self.http2 => format!("{on}; server sets no stream limit"),
            _ => on,
        }
    }

    /// `--connect-timeout`.
    pub fn connect_timeout(&self) -> std::time::Duration {
        self.connect_timeout
    }

    /// Whether requests the server refused unprocessed are sent again (not `--no-retry`).
    pub fn retry(&self) -> bool {
        self.retry
    }

    /// Whether it speaks HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// The lowest SETTINGS_MAX_CONCURRENT_STREAMS a server announced, if any did.
    pub fn server_max_streams(&self) -> Option<usize> {
        Some(self.server_streams.load(Ordering::Relaxed)).filter(|n| *n != usize::MAX)
    }

    /// Notes a server's stream limit, as seen on a connection.
    pub fn saw_server_limit(&self, limit: usize) {
        self.server_streams.fetch_min(limit, Ordering::Relaxed);
        self.server_streams_last.store(limit, Ordering::Relaxed);
    }

    /// The address it connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same connector, connecting to another address (a script's `thread.addr`).
    /// The largest request whose bytes are known before the run (templates built once),
    /// and whether it speaks TLS.
    pub fn largest_fixed_request(&self) -> usize {
        let len = |t: &RequestTemplate| t.wire.as_ref().map_or(0, Bytes::len);
        let mix = self.mix.iter().flat_map(|m| m.templates.iter()).map(len);
        mix.fold(len(&self.template), usize::max)
    }

    /// Whether connections speak TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same, its connections' sends stamped by the kernel (for the io_uring path).
    pub fn with_stamped_sends(self) -> Connector {
        Connector {
            stamp_sends: true,
            ..self
        }
    }

    pub fn with_addr(&self, addr: SocketAddr) -> Connector {
        Connector {
            addr,
            ..self.clone()
        }
    }

    /// Opens one connection and spawns its driver on the current `LocalSet`.
    pub async fn connect(&self) -> Result<Link, ConnectError> {
        self.connect_timed().await.map(|(s, _)| s)
    }

    /// `connect`, also saying how long the TCP connect and the TLS handshake took.
    pub async fn connect_timed(&self) -> Result<(Link, ConnectTiming), ConnectError> {
        let addr = self.addr;
        let limit = self.connect_timeout;
        tokio::time::timeout(limit, self.open())
            .await
            .unwrap_or(Err(ConnectError::Timeout { addr, limit }))
    }

    async fn open(&self) -> Result<(Link, ConnectTiming), ConnectError> {
        let addr = self.addr;
        let t0 = std::time::Instant::now();
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ConnectError::Tcp { addr, source })?;
        let t1 = std::time::Instant::now();
        let mut timing = ConnectTiming {
            tcp: t1 - t0,
            tls: None,
        };
        let _ = tcp.set_nodelay(true);
        let tcp = StampedTcp::new(tcp, self.kernel_stamps, self.stamp_sends)
            .map_err(|source| ConnectError::Tcp { addr, source })?;
        let arrival = tcp.stamping().then(|| tcp.arrival());
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| {
                        let text = source.to_string();
                        let hint = if text.contains("certificate") {
                            " (use -k/--insecure to skip certificate verification)"
                        } else if self.http2 && text.contains("NoApplicationProtocol") {
                            " (ALPN offered only h2 and the server refused it: it does not \
                             speak HTTP/2 here; drop --http2 to test it over HTTP/1.1)"
                        } else {
                            ""
                        };
                        ConnectError::Tls { addr, source, hint }
                    })?;
                timing.tls = Some(t1.elapsed());
                let session = tls.get_ref().1;
                if self.http2 && session.alpn_protocol() != Some(b"h2") {
                    let chose = match session.alpn_protocol() {
                        Some(p) => String::from_utf8_lossy(p).into_owned(),
                        None => "none (no ALPN)".into(),
                    };
                    return Err(ConnectError::NoH2 { addr, chose });
                }
                let _ = self.negotiated.set(format!(
                    "{} with {}",
                    session
                        .protocol_version()
                        .map_or("TLS".into(), |v| format!("{v:?}").replace('_', ".")),
                    session
                        .negotiated_cipher_suite()
                        .map_or("an unknown cipher".into(), |c| format!("{:?}", c.suite())),
                ));
                Stream::Tls(Box::new(tls))
            }
        };
        if self.http2 {
            let mut link = self.open_h2(stream, arrival.clone()).await?;
            link.arrival = arrival;
            return Ok((Link::H2(link), timing));
        }
        Ok((Link::H1(H1Conn::new(stream, arrival)), timing))
    }

    /// The HTTP/2 preface and SETTINGS; returns once the server's SETTINGS (its first
    /// frame) arrived, so its stream limit is known before the first request.
    async fn open_h2(
        &self,
        stream: Stream,
        arrival: Option<Arrival>,
    ) -> Result<H2Link, ConnectError> {
        let addr = self.addr;
        let hint = if self.tls.is_none() {
            " (over http:// --http2 is h2c with prior knowledge: does the server speak it?)"
        } else {
            ""
        };
        let fail = |source| ConnectError::H2 { addr, source, hint };
        let (sender, driver) = H2Conn::handshake(stream, arrival.clone())
            .await
            .map_err(fail)?;
        tokio::task::spawn_local(driver);
        let link = H2Link {
            sender,
            arrival: None,
        };
        self.saw_server_limit(link.server_limit());
        Ok(link)
    }

    /// Request `seq` over HTTP/2 (its header block encoded once, with the template), and
    /// its tag.
    pub fn request_h2(&self, seq: u64) -> (H2Request, u16) {
        let (t, body, tag) = self.pick(seq);
        let (block, has_length) =
            t.h2.as_ref()
                .expect("an HTTP/2 connector has an HTTP/2 template");
        let block = if !body.is_empty() && !has_length {
            // A body built per request (--prompts): its length joins the block.
            let mut b = block.to_vec();
            http2::append_content_length(&mut b, body.len());
            b.into()
        } else {
            block.clone()
        };
        let head = t.method == hyper::Method::HEAD;
        (H2Request { block, body, head }, tag)
    }

    /// A request built for HTTP/1.1 (a script's), made an HTTP/2 request to this target.
    pub fn to_h2(&self, req: Request<Full<Bytes>>) -> Result<H2Request, String> {
        let (parts, body) = req.into_parts();
        let body = full_bytes(body);
        let head = Request::from_parts(parts, ());
        // A Host header the script set names the authority, as it would over HTTP/1.1.
        let origin = match head.headers().get(hyper::header::HOST) {
            Some(h) => format!(
                "{}://{}",
                if self.tls.is_some() { "https" } else { "http" },
                h.to_str().map_err(|e| format!("Host header: {e}"))?
            ),
            None => self.template.origin.clone(),
        };
        let head = to_h2_head(head, &origin)?;
        let length = (!body.is_empty()
            && !head.headers().contains_key(hyper::header::CONTENT_LENGTH))
        .then_some(body.len());
        Ok(H2Request {
            block: http2::encode_head(&head, length),
            body,
            head: head.method() == hyper::Method::HEAD,
        })
    }

    /// Request `seq` as it goes on the wire, and its tag: the template's bytes, built
    /// once, or (for `--prompts`) its head with this request's body.
    pub fn request(&self, seq: u64) -> (Wire, u16) {
        let (t, body, tag) = self.pick(seq);
        let head = t.method == hyper::Method::HEAD;
        if let Some(wire) = &t.wire {
            return (
                Wire {
                    bytes: wire.clone(),
                    head,
                    close: t.close,
                },
                tag,
            );
        }
        let mut bytes = Vec::with_capacity(t.wire_head.len() + 32 + body.len());
        bytes.extend_from_slice(&t.wire_head);
        if !t.headers.contains_key(hyper::header::CONTENT_LENGTH) {
            bytes.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&body);
        let bytes = bytes.into();
        let close = t.close;
        (Wire { bytes, head, close }, tag)
    }
}

impl RequestTemplate {
    /// The request sent to the plan's target with this method, path (and query), headers
    /// (the plan's `-H` first, then `extra`) and body: a fixed one (`Some`) gets its
    /// `Content-Length` here; bodies built per request (`None`) get it when built.
    fn new(
        config: &Plan,
        method: &hyper::Method,
        path: &str,
        extra: &[(String, String)],
        fixed_body: Option<&Bytes>,
    ) -> Result<RequestTemplate, String> {
        let empty = Bytes::new();
        let body = fixed_body.unwrap_or(&empty);
        let t = &config.target;
        let mut headers = hyper::HeaderMap::new();
        let has_host = config.headers.iter().any(|(k, _)| k == hyper::header::HOST)
            || extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
        if !has_host {
            let host = hyper::header::HeaderValue::from_str(&t.authority)
                .map_err(|e| format!("{:?} cannot be a Host header: {e}", t.authority))?;
            headers.insert(hyper::header::HOST, host);
        }
        for (k, v) in &config.headers {
            headers.append(k.clone(), v.clone());
        }
        for (k, v) in extra {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("header {k:?}: {e}"))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|e| format!("header {k}: {v:?}: {e}"))?;
            headers.append(name, value);
        }
        if !body.is_empty() && !headers.contains_key(hyper::header::CONTENT_LENGTH) {
            headers.insert(hyper::header::CONTENT_LENGTH, body.len().into());
        }
        let uri: Uri = path.parse().map_err(|e| format!("path {path:?}: {e}"))?;
        let scheme = if t.tls { "https" } else { "http" };
        let authority = headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(&t.authority)
            .to_string();
        let mut template = RequestTemplate {
            method: method.clone(),
            uri,
            headers,
            body: body.clone(),
            origin: format!("{scheme}://{authority}"),
            h2: None,
            wire_head: Vec::new(),
            wire: None,
            close: false,
        };
        template.close = template
            .headers
            .get_all(hyper::header::CONNECTION)
            .iter()
            .any(|v| {
                v.as_bytes()
                    .split(|&c| c == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            });
        template.wire_head = wire_head(&template.method, &template.uri, &template.headers);
        if fixed_body.is_some() {
            let mut wire = template.wire_head.clone();
            // (An empty body where one is expected is said, as hyper would.)
            let expects_body = [
                hyper::Method::POST,
                hyper::Method::PUT,
                hyper::Method::PATCH,
            ];
            if body.is_empty()
                && expects_body.contains(method)
                && !template.headers.contains_key(hyper::header::CONTENT_LENGTH)
            {
                wire.extend_from_slice(b"content-length: 0\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(body);
            template.wire = Some(wire.into());
        }
        if config.http2 {
            let mut head = hyper::Request::new(());
            *head.method_mut() = template.method.clone();
            *head.uri_mut() = template.uri.clone();
            *head.headers_mut() = template.headers.clone();
            let head = to_h2_head(head, &template.origin)?;
            let has_length = head.headers().contains_key(hyper::header::CONTENT_LENGTH);
            template.h2 = Some((http2::encode_head(&head, None), has_length));
        }
        Ok(template)
    }
}

/// An HTTP/1.1 request line and headers (each ending in CRLF), as hyper would send them.
fn wire_head(method: &hyper::Method, uri: &Uri, headers: &hyper::HeaderMap) -> Vec<u8> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Vec::with_capacity(64 + headers.len() * 32);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A target of `--targets` as a template: it must be on the plan's origin (one set of
/// connections serves the whole mix).
fn template_of(config: &Plan, spec: &RequestSpec) -> Result<RequestTemplate, ConfigError> {
    let bad = |why: String| invalid("--targets", &spec.origin, why);
    let url = super::plan::Target::parse(&spec.url).map_err(|e| bad(e.to_string()))?;
    let t = &config.target;
    if (url.tls, url.host.as_str(), url.port) != (t.tls, t.host.as_str(), t.port) {
        return Err(bad(format!(
            "{} is not on {}://{}:{} like the first target: one run keeps one set of \
             connections to one origin (run one ratebench per origin)",
            spec.url,
            if t.tls { "https" } else { "http" },
            t.host,
            t.port
        )));
    }
    let method = hyper::Method::from_bytes(spec.method.as_bytes())
        .map_err(|e| bad(format!("method {:?}: {e}", spec.method)))?;
    let body = if spec.body.is_empty() {
        config.body.clone()
    } else {
        spec.body.clone()
    };
    RequestTemplate::new(config, &method, &url.path, &spec.headers, Some(&body)).map_err(bad)
}

/// The bytes of a `Full` body (ready at once: it holds them).
fn full_bytes(body: Full<Bytes>) -> Bytes {
    use hyper::body::Body;
    let mut body = std::pin::pin!(body);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match body.as_mut().poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// An HTTP/1.1-style request head made an HTTP/2 one: the absolute URI (`origin` + path)
/// carries :scheme and :authority, and the headers HTTP/2 forbids are dropped (Host becomes
/// :authority; Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding and Upgrade
/// mean nothing in HTTP/2; TE only as "trailers").
pub fn to_h2_head(mut head: Request<()>, origin: &str) -> Result<Request<()>, String> {
    use hyper::header::{CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
    let path = head
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if head.uri().scheme().is_none() {
        *head.uri_mut() = format!("{origin}{path}")
            .parse()
            .map_err(|e| format!("{origin}{path} is not a URI: {e}"))?;
    }
    let h = head.headers_mut();
    for name in [HOST, CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        h.remove(name);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
    if h.get(TE).is_some_and(|v| v != "trailers") {
        h.remove(TE);
    }
    Ok(head)
}
