//! TLS controls against `serve` on loopback with certificates made here (a private CA):
//! `--cacert`, `--resolve` with a name that does not resolve, mutual TLS, and
//! `--connect-timeout`; bad files are usage errors before any traffic.

mod common;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A private CA, a server certificate for `localhost` and `ratebench.test`, and a client
/// certificate, all signed by the CA, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ratebench test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (scert, skey) = leaf(vec!["localhost".into(), "ratebench.test".into()]);
    let (ccert, ckey) = leaf(vec!["client.ratebench.test".into()]);
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server: (write("server.pem", &scert), write("server.key", &skey)),
        client: (write("client.pem", &ccert), write("client.key", &ckey)),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_private_ca_is_trusted_with_cacert_and_resolve_keeps_the_name() {
    let dir = tmpdir("tls-cacert");
    let pki = pki(&dir);
    let server = serve(|c| {
        c.tls = true;
        c.cert = Some(pki.server.clone());
    });
    let port = server.addr.port();
    let url = format!("https://localhost:{port}/");
    // Untrusted without the CA: exit 1 before any traffic.
    let out = load(&url)
        .rate("20")
        .duration("1s")
        .run_bin(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("certificate"), "{err}");
    // Trusted with --cacert. Each connection opened has its TCP connect and its TLS
    // handshake timed (JSON connect_ms, and a line of the report).
    let (r, j) = load(&url)
        .rate("20")
        .duration("1s")
        .connections(2)
        .flag("--cacert", s(&pki.ca))
        .run_json();
    assert_eq!(r.recorder.total.completed, 20);
    let opened = j["connections"]["opened"].as_u64().unwrap();
    assert!(opened >= 2);
    assert_eq!(j["connect_ms"]["tcp"]["count"].as_u64(), Some(opened));
    assert_eq!(j["connect_ms"]["tls"]["count"].as_u64(), Some(opened));
    let text = ratebench::report::text::render(
        &r,
        &ratebench::report::Summary::of(&r),
        &[],
        Default::default(),
    );
    assert!(text.contains("; TLS handshake p50 "), "{text}");
    // What was negotiated is said: rustls and serve agree on TLS 1.3.
    let negotiated = j["connections"]["negotiated"].as_str().unwrap();
    assert!(
        negotiated.starts_with("HTTP/1.1 over TLSv1.3 with TLS13_"),
        "{negotiated}"
    );
    assert!(text.contains(negotiated), "{text}");
    // A name that does not resolve: --resolve sends it to 127.0.0.1 while the TLS name
    // (and the certificate check) stays ratebench.test.
    let r = load(&format!("https://ratebench.test:{port}/"))
        .rate("20")
        .duration("1s")
        .connections(2)
        .flag("--cacert", s(&pki.ca))
        .flag("--resolve", &format!("ratebench.test:{port}:127.0.0.1"))
        .run();
    assert_eq!(r.recorder.total.completed, 20);
    assert_eq!(
        server
            .stats
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        40
    );
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let dir = tmpdir("tls-mtls");
    let pki = pki(&dir);
    let server = serve(|c| {
        c.tls = true;
        c.cert = Some(pki.server.clone());
        c.client_ca = Some(pki.ca.clone());
    });
    let url = format!("https://localhost:{}/", server.addr.port());
    // Without a client certificate the server refuses every request (at the handshake, or
    // right after it under TLS 1.3): nothing completes.
    let out = load(&url)
        .rate("10")
        .duration("1s")
        .flag("--cacert", s(&pki.ca))
        .flag("--json", s(&dir.join("none.json")))
        .run_bin(Duration::from_secs(30));
    if out.status.code() == Some(0) {
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("none.json")).unwrap()).unwrap();
        assert_eq!(j["accounting"]["completed"], 0, "{j}");
    } else {
        assert_eq!(out.status.code(), Some(1));
    }
    assert_eq!(
        server
            .stats
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // With it, every request completes.
    let r = load(&url)
        .rate("10")
        .duration("1s")
        .connections(2)
        .flag("--cacert", s(&pki.ca))
        .flag("--cert", s(&pki.client.0))
        .flag("--key", s(&pki.client.1))
        .run();
    assert_eq!(r.recorder.total.completed, 10);
}

#[test]
fn connect_timeout_is_its_own_limit() {
    // A listener that accepts and never answers the TLS ClientHello: the handshake hangs.
    // With --timeout 30s and --connect-timeout 300ms, it is the connect limit that ends it.
    let silent = raw_server(Behaviour::NeverAnswer);
    let url = format!("https://127.0.0.1:{}/", silent.addr.port());
    let out = load(&url)
        .rate("10")
        .duration("1s")
        .timeout("30s")
        .flag("--connect-timeout", "300ms")
        .run_bin(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("within --connect-timeout (300ms)"), "{err}");
}

#[test]
fn bad_tls_inputs_are_usage_errors_before_traffic() {
    let target = counting_listener();
    let url = format!("https://127.0.0.1:{}/", target.addr.port());
    let dir = tmpdir("tls-bad");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (args, says) in [
        (
            vec!["-R1", "--cacert", "/nonexistent/ca.pem", url.as_str()],
            "--cacert",
        ),
        (
            vec!["-R1", "--cacert", s(&junk), url.as_str()],
            "no PEM certificate",
        ),
        (
            vec!["-R1", "--cert", s(&junk), "--key", s(&junk), url.as_str()],
            "--cert",
        ),
        (
            vec!["-R1", "--resolve", "nohostport", url.as_str()],
            "--resolve",
        ),
        (
            vec!["-R1", "--connect-timeout", "0s", url.as_str()],
            "--connect-timeout",
        ),
    ] {
        let out = run_bin(&args, Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(target.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A file of `tests/data/tls` (certificates made with the OpenSSL command line).
fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

#[test]
fn a_self_signed_certificate_given_with_cacert_is_trusted_as_curl_trusts_it() {
    // `openssl req -x509` makes a self-signed certificate that says CA:TRUE; given itself
    // with --cacert, curl (OpenSSL) trusts it. WebPKI alone refuses a CA as an end entity
    // (CaUsedAsEndEntity): ratebench trusts it as curl does, and still checks its name.
    let server = serve(|c| {
        c.tls = true;
        c.cert = Some((fixture("server.pem"), fixture("server.key")));
    });
    let port = server.addr.port();
    let r = load(&format!("https://localhost:{port}/"))
        .rate("20")
        .duration("1s")
        .flag("--cacert", s(&fixture("server.pem")))
        .run();
    assert_eq!(r.recorder.total.completed, 20);
    // The same certificate for another name is refused before any traffic.
    let out = load(&format!("https://ratebench.test:{port}/"))
        .rate("20")
        .duration("1s")
        .flag("--cacert", s(&fixture("server.pem")))
        .flag("--resolve", &format!("ratebench.test:{port}:127.0.0.1"))
        .run_bin(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn a_v1_client_certificate_is_accepted_before_traffic() {
    // An X.509 v1 client certificate (`openssl x509 -req` without extensions) with its
    // key: the configuration is accepted and the run goes (WebPKI cannot read v1 as an end
    // entity, so before, rustls refused it with a mangled message); a key that is not the
    // certificate's is a usage error that names the flags once.
    let server = serve(|c| c.tls = true);
    let url = format!("https://localhost:{}/", server.addr.port());
    let out = load(&url)
        .rate("5")
        .duration("1s")
        .switch("-k")
        .flag("--cert", s(&fixture("client.pem")))
        .flag("--key", s(&fixture("client.key")))
        .run_bin(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // (A v1 certificate cannot be read to compare its key: a v3 one with another key.)
    let pki = pki(&tmpdir("tls-mismatch"));
    let out = load(&url)
        .rate("5")
        .duration("1s")
        .switch("-k")
        .flag("--cert", s(&pki.client.0))
        .flag("--key", s(&fixture("server.key")))
        .run_bin(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--cert/--key: the key is not the certificate's"),
        "{err}"
    );
    assert_eq!(err.matches("--cert").count(), 1, "{err}");
}
