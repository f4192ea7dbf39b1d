//! One HTTP/1.1 connection: connect (TCP, then TLS for https) and build the request sent
//! on it.
//!
//! hyper's low-level `client::conn::http1` is used directly: no pool, no retries, no
//! redirects — each scheduled request is exactly one attempt on the wire. A connection
//! that the server closes, or on which a request failed, is dropped; the next request on
//! that slot re-opens it, and the reconnect time counts against that request's latency.
//!
//! Sending and reading live in `engine::exchange`, TLS settings in `engine::tls`.
//!
//! Used by `engine::slot` (the request loop) and `engine` (the preflight connect).

use super::plan::Plan;
use super::tls::{tls_config, Stream};
use crate::error::{invalid, ConfigError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
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
    #[error("no connection to {addr} within --connect-timeout ({limit:?})")]
    Timeout {
        /// The address tried.
        addr: SocketAddr,
        /// The limit.
        limit: std::time::Duration,
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
}

/// The parts of the request sent every time (no script).
#[derive(Clone)]
struct RequestTemplate {
    method: hyper::Method,
    uri: Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
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
            let tls = tls_config(&config.tls).map_err(|e| invalid("--cert/--key", "", e))?;
            Some((TlsConnector::from(tls), name))
        } else {
            None
        };
        let mut headers = hyper::HeaderMap::new();
        let has_host = config.headers.iter().any(|(k, _)| k == hyper::header::HOST);
        if !has_host {
            let host = hyper::header::HeaderValue::from_str(&t.authority).map_err(|e| {
                invalid(
                    "URL",
                    &t.url,
                    format!("{:?} cannot be a Host header: {e}", t.authority),
                )
            })?;
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
            .map_err(|e| invalid("URL", &t.url, format!("path {:?}: {e}", t.path)))?;
        Ok(Connector {
            addr,
            tls,
            connect_timeout: config.connect_timeout,
            negotiated: Arc::default(),
            template: RequestTemplate {
                method: config.method.clone(),
                uri,
                headers,
                body: config.body.clone(),
            },
        })
    }

    /// What was negotiated with the target: the protocol, and for https the TLS version and
    /// cipher of the first handshake.
    pub fn negotiated(&self) -> String {
        match self.negotiated.get() {
            Some(tls) => format!("HTTP/1.1 over {tls}"),
            None if self.tls.is_some() => "HTTP/1.1 over TLS".into(),
            None => "HTTP/1.1 (cleartext)".into(),
        }
    }

    /// The address it connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
        self.connect_timed().await.map(|(s, _)| s)
    }

    /// `connect`, also saying how long the TCP connect and the TLS handshake took.
    pub async fn connect_timed(
        &self,
    ) -> Result<(SendRequest<Full<Bytes>>, ConnectTiming), ConnectError> {
        let addr = self.addr;
        let limit = self.connect_timeout;
        tokio::time::timeout(limit, self.open())
            .await
            .unwrap_or(Err(ConnectError::Timeout { addr, limit }))
    }

    async fn open(&self) -> Result<(SendRequest<Full<Bytes>>, ConnectTiming), ConnectError> {
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
                timing.tls = Some(t1.elapsed());
                let session = tls.get_ref().1;
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
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Http { addr, source })?;
        tokio::task::spawn_local(async move {
            // Errors surface through the request that was in flight.
            let _ = conn.await;
        });
        Ok((sender, timing))
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
