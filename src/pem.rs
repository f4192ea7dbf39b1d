//! PEM files: certificate bundles and private keys (`--cacert`, `--cert`, `--key`, and
//! `serve`'s own), read before any traffic so a missing or bad file is a usage error.
//!
//! A leaf. Used by `engine::tls`, `serve` and `cli`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Reads a PEM bundle of certificates (`--cacert`, `--cert`); the error says what is wrong.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e:?}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(certs)
}

/// Reads a PEM private key (`--key`: PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| format!("not a PEM private key: {e:?}"))
}
