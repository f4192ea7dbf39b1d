//! A raw HTTP/2 server for tests, frames in and out by hand: it does what real servers do on
//! a bad day (refuse streams, change their limits, go away) and what none should (break the
//! protocol in every way a client must survive). Each connection runs `serve(&mut Peer)` on
//! a thread of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const REFUSED_STREAM: u32 = 0x7;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;

/// One frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// What the client did, as `Peer::next` reports it.
#[derive(Debug)]
pub enum Event {
    /// A request's HEADERS (the stream id; whether it ended the stream).
    Request(u32, bool),
    /// DATA on a stream (its length; whether it ended the stream).
    Data(u32, usize, bool),
    /// The client reset a stream.
    Reset(u32),
    /// The client acknowledged our SETTINGS.
    SettingsAck,
    /// Nothing within the wait.
    Idle,
    /// The connection closed.
    Closed,
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// The server's side of one connection.
pub struct Peer {
    /// The TCP socket (its read timeout bounds each wait).
    pub tcp: TcpStream,
    /// What frames are read from and written to (the socket, or TLS over it).
    pub conn: Box<dyn Io>,
    buf: Vec<u8>,
    /// Which connection this is (0 for the first accepted).
    pub index: usize,
    /// Credit DATA back with WINDOW_UPDATEs as it is read (else the windows stay as the
    /// test set them).
    pub credit: bool,
}

impl Peer {
    /// Reads the client's preface and sends our SETTINGS (`settings`: id, value pairs).
    pub fn handshake(&mut self, settings: &[(u16, u32)]) -> bool {
        let mut preface = [0u8; 24];
        if self.conn.read_exact(&mut preface).is_err() || &preface[..3] != b"PRI" {
            return false;
        }
        self.settings(settings);
        true
    }

    /// Sends a SETTINGS frame.
    pub fn settings(&mut self, settings: &[(u16, u32)]) {
        let mut p = Vec::new();
        for (k, v) in settings {
            p.extend_from_slice(&k.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        self.send(SETTINGS, 0, 0, &p);
    }

    /// Sends one frame.
    pub fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        let _ = self.conn.write_all(&f);
    }

    /// The next whole frame within `wait` (`Ok(None)`: none yet; `Err`: closed).
    pub fn frame(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let deadline = Instant::now() + wait;
        loop {
            if self.buf.len() >= 9 {
                let len = (self.buf[0] as usize) << 16
                    | (self.buf[1] as usize) << 8
                    | self.buf[2] as usize;
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                            self.buf[8],
                        ]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Ok(Some(f));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = self
                .tcp
                .set_read_timeout(Some(left.max(Duration::from_micros(100))));
            let mut chunk = [0u8; 65536];
            match self.conn.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(()),
            }
        }
    }

    /// The next thing the client did within `wait`; SETTINGS are acknowledged, PINGs
    /// answered and WINDOW_UPDATEs taken in passing.
    pub fn next(&mut self, wait: Duration) -> Event {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = match self.frame(left) {
                Err(()) => return Event::Closed,
                Ok(None) => return Event::Idle,
                Ok(Some(f)) => f,
            };
            match f.kind {
                SETTINGS if f.flags & ACK == 0 => self.send(SETTINGS, ACK, 0, &[]),
                SETTINGS => return Event::SettingsAck,
                PING if f.flags & ACK == 0 => self.send(PING, ACK, 0, &f.payload),
                HEADERS => return Event::Request(f.stream, f.flags & END_STREAM != 0),
                DATA => {
                    // Keep the client's windows open.
                    if self.credit && !f.payload.is_empty() {
                        let n = (f.payload.len() as u32).to_be_bytes();
                        self.send(WINDOW_UPDATE, 0, 0, &n);
                        self.send(WINDOW_UPDATE, 0, f.stream, &n);
                    }
                    return Event::Data(f.stream, f.payload.len(), f.flags & END_STREAM != 0);
                }
                RST_STREAM => return Event::Reset(f.stream),
                _ => {}
            }
            if Instant::now() >= deadline {
                return Event::Idle;
            }
        }
    }

    /// Answers `stream`: status 200, a content-length, and `body` in one DATA frame.
    pub fn respond(&mut self, stream: u32, body: &[u8]) {
        let len = body.len().to_string();
        let block = head_block(&[(":status", "200"), ("content-length", &len)]);
        self.send(HEADERS, END_HEADERS, stream, &block);
        self.send(DATA, END_STREAM, stream, body);
    }

    /// Resets `stream` with `code`.
    pub fn reset(&mut self, stream: u32, code: u32) {
        self.send(RST_STREAM, 0, stream, &code.to_be_bytes());
    }

    /// GOAWAY: streams above `last` were not processed.
    pub fn goaway(&mut self, last: u32, code: u32) {
        let mut p = last.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        self.send(GOAWAY, 0, 0, &p);
    }
}

/// A header block of literals without indexing (new names, no Huffman).
pub fn head_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        b.push(0x00);
        string(&mut b, n.as_bytes());
        string(&mut b, v.as_bytes());
    }
    b
}

/// An HPACK string literal (7-bit prefixed length, no Huffman).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// An HPACK integer with an `n`-bit prefix.
pub fn integer(out: &mut Vec<u8>, n: u8, flags: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

/// A raw HTTP/2 server on a free loopback port; `serve` runs once per connection.
pub struct H2Server {
    pub addr: SocketAddr,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
}

pub fn h2_server(serve: impl Fn(&mut Peer) + Send + Sync + 'static) -> H2Server {
    serve_on(None, serve)
}

/// `h2_server` over TLS (a fresh self-signed certificate for localhost; ALPN h2).
pub fn h2_server_tls(serve: impl Fn(&mut Peer) + Send + Sync + 'static) -> H2Server {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    serve_on(Some(Arc::new(config)), serve)
}

fn serve_on(
    tls: Option<Arc<rustls::ServerConfig>>,
    serve: impl Fn(&mut Peer) + Send + Sync + 'static,
) -> H2Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let _ = conn.set_nodelay(true);
            let index = count.fetch_add(1, Ordering::SeqCst);
            let serve = serve.clone();
            let tls = tls.clone();
            std::thread::spawn(move || {
                let tcp = conn.try_clone().unwrap();
                let conn: Box<dyn Io> = match tls {
                    None => Box::new(conn),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        Box::new(rustls::StreamOwned::new(session, conn))
                    }
                };
                let mut peer = Peer {
                    tcp,
                    conn,
                    buf: Vec::new(),
                    index,
                    credit: true,
                };
                serve(&mut peer);
            });
        }
    });
    H2Server { addr, connections }
}
