//! TLS set-up shared by the binaries.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Several crates here enable different rustls crypto backends (ring for
/// sqlx, aws-lc-rs for the Google clients), and then rustls cannot pick one
/// by itself: a `ClientConfig::builder()` made later (fred's, for
/// `rediss://`) would panic. Every binary calls this first.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is all we need.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The CA certificates of a PEM bundle (e.g. Memorystore's server CA).
pub fn root_store(pem: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        store.add(certificate).map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert!(root_store("").is_err());
        assert!(root_store("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").is_err());
    }
}
