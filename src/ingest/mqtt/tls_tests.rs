//! TLS (rustls + ring, CA from file, client certificate) against a mosquitto TLS listener, with
//! certificates made by the `openssl` command for each run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::*;
use crate::ingest::publish::Publisher;
use crate::ingest::testkit::Mosquitto;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): apt-get install -y openssl"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `ca.pem`, a server cert for 127.0.0.1 and a client cert, all signed by the CA; plus an
/// unrelated `other-ca.pem`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let (key, pem) = (format!("{ca}.key"), format!("{ca}.pem"));
        let mut args = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=citybrain test CA",
        ];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem]);
        openssl(dir, &args);
    }
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let (key, csr, pem, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(dir.join(&extfile), ext).expect("write ext");
        let mut args = vec![
            "req",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key,
            "-out",
            &csr,
        ];
        args.extend(ec);
        openssl(dir, &args);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &pem,
            ],
        );
    }
}

fn tls_cfg(port: u16, dir: &Path, ca: &str, name: &str) -> MqttConfig {
    let p = |f: &str| -> PathBuf { dir.join(f) };
    MqttConfig {
        client_id: format!("{name}-{}", std::process::id()),
        tls: Some(TlsConfig {
            ca_file: p(ca),
            client_cert: Some(p("client.pem")),
            client_key: Some(p("client.key")),
        }),
        reconnect_min_ms: 50,
        ..MqttConfig::for_broker("127.0.0.1", port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_and_publisher_work_over_mutual_tls() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    let d = dir.path().display();
    let m = Mosquitto::start_with(&format!(
        "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true"
    ))
    .unwrap_or_else(|e| panic!("{e}"));

    let cfg = tls_cfg(m.port, dir.path(), "ca.pem", "tls-src");
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let stats = Arc::new(SourceStats::default());
    let source = tokio::spawn(run_source(cfg, tx, stats.clone(), stop_rx));

    let publisher = Publisher::connect(&tls_cfg(m.port, dir.path(), "ca.pem", "tls-pub"), "t")
        .await
        .expect("publisher connects over TLS");
    let got = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            publisher
                .publish("city/tls/x", b"secret".to_vec(), 1, false)
                .await
                .expect("publish");
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                return m;
            }
        }
    })
    .await
    .expect("a message arrives over TLS");
    assert_eq!(
        (got.topic.as_str(), got.payload.as_slice()),
        ("city/tls/x", &b"secret"[..])
    );
    publisher.disconnect().await;

    // A client that trusts another CA must not connect.
    let wrong = tls_cfg(m.port, dir.path(), "other-ca.pem", "tls-wrong");
    assert!(matches!(
        Publisher::connect(&wrong, "t").await,
        Err(MqttError::Connect { .. })
    ));

    stop.send(true).expect("source running");
    source.await.expect("joins").expect("source ends cleanly");
    assert_eq!(
        stats
            .connect_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
