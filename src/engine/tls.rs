//! TLS for the client side: the rustls configuration (the built-in web PKI roots, the
//! system's trust store and `--cacert` bundles; none with `-k`; a client certificate with
//! `--cert`/`--key`; ALPN offering only the protocol spoken) and the byte stream that is
//! either plain TCP or TLS over it.
//!
//! ratebench drives tokio-rustls itself rather than through hyper-rustls' connector: it
//! opens each connection by hand (no pool, one attempt per scheduled request, its own
//! timing of connect and handshake), which is what hyper-rustls' connector would hide.
//!
//! Used by `engine::conn` (connecting) and `cli` (loading the files before any traffic).

pub use crate::pem::{read_certs, read_key};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Accepts any certificate (`-k`): the handshake still runs, only the trust check is off.
/// The usual WebPKI verification against the roots (bundled, system, `--cacert`), plus one
/// rule OpenSSL — and so curl — has: a server certificate given itself with `--cacert` is
/// trusted as it is, even when it says it is a CA (`openssl req -x509` makes self-signed
/// certificates with `CA:TRUE`, which WebPKI refuses as an end entity). Its name is still
/// checked, and every other fault WebPKI names (expiry, a wrong name) still fails.
#[derive(Debug)]
struct Pinned {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    /// The `--cacert` certificates.
    pinned: Vec<CertificateDer<'static>>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(_)))
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            v => v,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

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
/// offers only the protocol spoken (h2 with `--http2`, else http/1.1).
pub fn tls_config(
    settings: &TlsSettings,
    http2: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let builder = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
    } else {
        // The built-in web roots, the system's trust store, and the --cacert bundles.
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        roots.add_parsable_certificates(system_roots());
        roots.add_parsable_certificates(settings.roots.iter().cloned());
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("--cacert: no usable certificate ({e})"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                webpki,
                pinned: settings.roots.clone(),
            }))
    };
    let mut config = match &settings.client {
        // The key is loaded as the provider loads keys and the chain sent as it is: an
        // X.509 v1 certificate (what `openssl x509 -req` makes without extensions) is the
        // server's to judge, as curl leaves it.
        Some(c) => {
            let key = provider
                .key_provider
                .load_private_key(c.1.clone_key())
                .map_err(|e| {
                    format!(
                        "--key: the key does not load ({e}); give an unencrypted PEM private \
                         key (PKCS#8, PKCS#1 or SEC1) that matches --cert"
                    )
                })?;
            let certified = rustls::sign::CertifiedKey::new(c.0.clone(), key);
            if let Err(rustls::Error::InconsistentKeys(k)) = certified.keys_match() {
                if k != rustls::InconsistentKeys::Unknown {
                    return Err(
                        "--cert/--key: the key is not the certificate's (its public key differs); \
                         give the key the certificate was made for"
                            .into(),
                    );
                }
            }
            // (A certificate WebPKI cannot read as an end entity, such as X.509 v1, cannot
            // be checked against the key here: it is sent, and the server judges it.)
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                certified,
            )))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(Arc::new(config))
}

/// What TLS trusts and presents, beyond the defaults: read from files before any traffic.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `-k`: accept any server certificate.
    pub insecure: bool,
    /// `--cacert`: more trusted roots.
    pub roots: Vec<CertificateDer<'static>>,
    /// `--cert` and `--key`: the client certificate chain and its key (mTLS).
    pub client: Option<Arc<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>>,
}

/// The system's trust store: `SSL_CERT_FILE`, else the usual bundle of the distribution.
fn system_roots() -> Vec<CertificateDer<'static>> {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/ca-bundle.pem",
                "/etc/ssl/cert.pem",
            ]
            .iter()
            .map(std::path::PathBuf::from),
        );
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
                .filter_map(Result::ok)
                .collect();
            if !certs.is_empty() {
                return certs;
            }
        }
    }
    Vec::new()
}

/// A plain or TLS byte stream.
pub enum Stream {
    /// http://
    Plain(super::stamp::StampedTcp),
    /// https://
    Tls(Box<tokio_rustls::client::TlsStream<super::stamp::StampedTcp>>),
}

impl Stream {
    /// When the bytes written since the last call began to leave, by the kernel's transmit
    /// stamp (plain connections whose sends are stamped).
    pub fn take_sent(&mut self) -> Option<std::time::Instant> {
        match self {
            Stream::Plain(tcp) => tcp.take_sent(),
            Stream::Tls(_) => None,
        }
    }

    /// A plain connection's socket and whether its sends are stamped (None over TLS,
    /// whose bytes go through rustls).
    pub fn send_fd(&self) -> Option<(std::os::fd::RawFd, bool)> {
        match self {
            Stream::Plain(tcp) => Some(tcp.send_fd()),
            Stream::Tls(_) => None,
        }
    }
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
