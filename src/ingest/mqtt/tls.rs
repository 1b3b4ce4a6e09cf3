//! The rustls client config for a [`TlsConfig`]: CA from a PEM file, optional client
//! certificate, and the ring provider named explicitly (so it works whatever the process default).

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rumqttc::TlsConfiguration;

use super::{MqttError, TlsConfig};

fn open_pem(path: &Path) -> Result<BufReader<File>, MqttError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| MqttError::Tls(format!("cannot open {}: {e}", path.display())))
}

/// Builds the rustls client config with the ring provider (independent of the process default).
pub(crate) fn rustls_config(tls: &TlsConfig) -> Result<TlsConfiguration, MqttError> {
    use rustls::pki_types::CertificateDer;
    let bad = |p: &Path, e: &dyn fmt::Display| MqttError::Tls(format!("{}: {e}", p.display()));

    let mut roots = rustls::RootCertStore::empty();
    let cas: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open_pem(&tls.ca_file)?)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&tls.ca_file, &e))?;
    if cas.is_empty() {
        return Err(bad(&tls.ca_file, &"no PEM certificate found"));
    }
    for ca in cas {
        roots.add(ca).map_err(|e| bad(&tls.ca_file, &e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open_pem(cert)?)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(cert, &e))?;
            let key_der = rustls_pemfile::private_key(&mut open_pem(key)?)
                .map_err(|e| bad(key, &e))?
                .ok_or_else(|| bad(key, &"no PEM private key found"))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad(cert, &e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(MqttError::Tls(
                "client_cert and client_key must be set together".into(),
            ))
        }
    };
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_file_is_a_tls_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("write");
        let tls = TlsConfig {
            ca_file: ca,
            client_cert: None,
            client_key: None,
        };
        assert!(matches!(rustls_config(&tls), Err(MqttError::Tls(_))));
    }
}
