//! TLS between services: with certificates configured, the gRPC port speaks
//! only TLS, and the services reach each other over it (checked against the
//! configured CA).

use std::{path::Path, process::Command, time::Duration};

use crate::helpers::{Options, TestApp, import_persons, persons_csv, residents};

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost,
/// made with the system's openssl as an operator would.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=huimin test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
}

#[tokio::test]
async fn with_certificates_the_services_speak_only_tls_to_callers_and_each_other() {
    let dir = std::env::temp_dir().join(format!("huimin-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    certificates(&dir);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("HUIMIN_TLS_CERT", path("server.pem")),
            ("HUIMIN_TLS_KEY", path("server.key")),
            ("HUIMIN_TLS_CA", path("ca.pem")),
        ],
        ..Options::default()
    })
    .await;

    // A roll import makes ledger call identity (CheckPersons): a peer hop over TLS.
    let people = residents();
    import_persons(&app, persons_csv(&people).as_bytes())
        .await
        .expect("persons import over TLS");
    let roll = crate::rolls::RollRow::pay(&people[0], "DIBAO_RURAL", "2026-07", "170");
    crate::rolls::import_csv(&app, &[roll])
        .await
        .expect("ledger reaches identity over TLS");

    // A plaintext client gets nowhere.
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let refused = match plain.connect().await {
        Err(_) => true,
        Ok(channel) => {
            huimin_proto::ledger::v1::ledger_service_client::LedgerServiceClient::new(channel)
                .list_programs(huimin_proto::ledger::v1::ListProgramsRequest::default())
                .await
                .is_err()
        }
    };
    assert!(refused, "a plaintext call was answered");
    let _ = std::fs::remove_dir_all(&dir);
}
