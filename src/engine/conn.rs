//! One HTTP/1.1 connection: connect (TCP, then TLS for https), send one request at a time,
//! read the whole response, and classify what went wrong.
//!
//! hyper's low-level `client::conn::http1` is used directly: no pool, no retries, no
//! redirects — each scheduled request is exactly one attempt on the wire. A connection
//! that the server closes, or on which a request failed, is dropped; the next request on
//! that slot re-opens it, and the reconnect time counts against that request's latency.
//!
//! Used by `engine::worker` (the request loop) and `engine` (the preflight connect).

use super::outcome::ErrorClass;
use crate::cli::RunConfig;
use crate::stream::{Event, SseParser, TokenRule};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A plain or TLS byte stream.
pub enum Stream {
    /// http://
    Plain(TcpStream),
    /// https://
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

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
    /// hyper refused the stream (should not happen for a fresh stream).
    #[error("HTTP/1.1 handshake with {addr} failed: {source}")]
    Http {
        /// The address tried.
        addr: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
}

/// Opens connections to the target and builds its requests.
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    template: RequestTemplate,
}

/// The parts of the request sent every time (no script).
#[derive(Clone)]
struct RequestTemplate {
    method: hyper::Method,
    uri: Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// Accepts any certificate (`-k`): the handshake still runs, only the trust check is off.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client configuration: web PKI roots, or no verification with `-k`; ALPN
/// offers only http/1.1, the protocol spoken.
pub fn tls_config(insecure: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Connector {
    /// A connector for `config`'s target at the resolved `addr`.
    pub fn new(config: &RunConfig, addr: SocketAddr) -> Result<Connector, String> {
        let t = &config.target;
        let tls = if t.tls {
            let name = ServerName::try_from(t.host.clone())
                .map_err(|e| format!("TLS server name {:?}: {e}", t.host))?;
            Some((TlsConnector::from(tls_config(config.insecure)), name))
        } else {
            None
        };
        let mut headers = hyper::HeaderMap::new();
        let has_host = config.headers.iter().any(|(k, _)| k == hyper::header::HOST);
        if !has_host {
            let host = hyper::header::HeaderValue::from_str(&t.authority)
                .map_err(|e| format!("Host header from {:?}: {e}", t.authority))?;
            headers.insert(hyper::header::HOST, host);
        }
        for (k, v) in &config.headers {
            headers.append(k.clone(), v.clone());
        }
        if !config.body.is_empty() && !headers.contains_key(hyper::header::CONTENT_LENGTH) {
            headers.insert(hyper::header::CONTENT_LENGTH, config.body.len().into());
        }
        let uri: Uri = t
            .path
            .parse()
            .map_err(|e| format!("path {:?}: {e}", t.path))?;
        Ok(Connector {
            addr,
            tls,
            template: RequestTemplate {
                method: config.method.clone(),
                uri,
                headers,
                body: config.body.clone(),
            },
        })
    }

    /// The same connector, connecting to another address (a script's `thread.addr`).
    pub fn with_addr(&self, addr: SocketAddr) -> Connector {
        Connector {
            addr,
            ..self.clone()
        }
    }

    /// Opens one connection and spawns its driver on the current `LocalSet`.
    pub async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ConnectError> {
        let addr = self.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ConnectError::Tcp { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| {
                        let hint = if source.to_string().contains("certificate") {
                            " (use -k/--insecure to skip certificate verification)"
                        } else {
                            ""
                        };
                        ConnectError::Tls { addr, source, hint }
                    })?;
                Stream::Tls(Box::new(tls))
            }
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Http { addr, source })?;
        tokio::task::spawn_local(async move {
            // Errors surface through the request that was in flight.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// The next request to send.
    pub fn request(&self) -> Request<Full<Bytes>> {
        let t = &self.template;
        let mut req = Request::new(Full::new(t.body.clone()));
        *req.method_mut() = t.method.clone();
        *req.uri_mut() = t.uri.clone();
        *req.headers_mut() = t.headers.clone();
        req
    }
}

/// What a `text/event-stream` response carried, measured as it arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    /// When the first content event arrived.
    pub first_token: Option<Instant>,
    /// When the last content event arrived.
    pub last_token: Option<Instant>,
    /// Content events seen.
    pub content_events: u64,
    /// `usage.completion_tokens` from the stream, if it sent one.
    pub usage_tokens: Option<u64>,
    /// The longest gap between two content events.
    pub max_gap: Duration,
    /// An event the token rule could not read (the stream is then a protocol error).
    pub malformed: bool,
}

impl StreamStats {
    /// Output tokens: the server's own count when it sent one, else content events.
    pub fn tokens(&self) -> u64 {
        self.usage_tokens.unwrap_or(self.content_events)
    }
}

/// A response's headers (name, value) and body, for a script's `response()`.
pub type Collected = (Vec<(String, String)>, Vec<u8>);

/// What is known about one exchange so far; filled in as the response arrives, so a
/// request that fails or times out half-way keeps what was measured.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Response headers and body, collected only when a script's `response()` wants them.
    pub collected: Option<Collected>,
    /// When the response head arrived.
    pub first_byte: Option<Instant>,
    /// Its status.
    pub status: u16,
    /// Response bytes read (headers estimated, body exact).
    pub bytes: u64,
    /// Set for event streams.
    pub stream: Option<StreamStats>,
}

/// Sends `req` and reads the whole response into `progress`; event streams are parsed as
/// they arrive, with each gap between content events passed to `on_gap`.
pub async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    rule: &TokenRule,
    progress: &mut Progress,
    collect: bool,
    mut on_gap: impl FnMut(Duration),
) -> Result<(), hyper::Error> {
    let resp = sender.send_request(req).await?;
    progress.first_byte = Some(Instant::now());
    progress.status = resp.status().as_u16();
    // Header bytes: status line (~17) plus "name: value\r\n" each, plus the blank line.
    progress.bytes = 19
        + resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
            .sum::<u64>();
    let is_stream = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if collect {
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        progress.collected = Some((headers, Vec::new()));
    }
    let mut body = resp.into_body();
    // Event streams are parsed as they arrive; other bodies are only counted (and collected
    // for a script's response()).
    let mut sse = is_stream.then(|| {
        progress.stream = Some(StreamStats::default());
        SseParser::new()
    });
    let mut on_event = |data: &[u8], stats: &mut StreamStats| {
        let (event, usage) = rule.classify(data);
        if usage.is_some() {
            stats.usage_tokens = usage;
        }
        match event {
            Event::Content => {
                let now = Instant::now();
                if let Some(last) = stats.last_token {
                    let gap = now - last;
                    stats.max_gap = stats.max_gap.max(gap);
                    on_gap(gap);
                } else {
                    stats.first_token = Some(now);
                }
                stats.last_token = Some(now);
                stats.content_events += 1;
            }
            Event::Malformed => stats.malformed = true,
            Event::Empty | Event::Done => {}
        }
    };
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            progress.bytes += data.len() as u64;
            if let Some((_, b)) = progress.collected.as_mut() {
                b.extend_from_slice(data);
            }
            if let (Some(parser), Some(stats)) = (sse.as_mut(), progress.stream.as_mut()) {
                parser.feed(data, |d| on_event(d, stats));
            }
        }
    }
    if let (Some(mut parser), Some(stats)) = (sse, progress.stream.as_mut()) {
        parser.finish(|d| on_event(d, stats));
    }
    Ok(())
}

/// The error class of a failed exchange.
pub fn classify(e: &hyper::Error) -> ErrorClass {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return ErrorClass::Protocol;
    }
    if e.is_timeout() {
        return ErrorClass::Timeout;
    }
    if e.is_body_write_aborted() {
        return ErrorClass::Write;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::WriteZero => ErrorClass::Write,
                io::ErrorKind::InvalidData => ErrorClass::Protocol,
                _ => ErrorClass::Read,
            };
        }
        source = s.source();
    }
    ErrorClass::Read
}
