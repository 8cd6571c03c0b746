//! TLS against a real etcd serving certificates made here (rcgen; no files checked in): a
//! custom CA works, and every certificate problem is a typed `Error::Tls` naming its cause
//! and the endpoint, after one attempt per endpoint.

use etcd_kv::{Client, TlsConfig};
use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A CA that signs certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names`, valid now unless `expired`: (certificate PEM, key PEM).
    fn sign(&self, names: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// A server serving `cert`/`key` on its TLS listener; with `client_ca`, mutual TLS.
fn server(
    dir: &Path,
    (cert, key): &(String, String),
    client_ca: Option<&Ca>,
) -> Option<xtask::Etcd> {
    let cert = write(dir, "server.pem", cert);
    let key = write(dir, "server-key.pem", key);
    let trusted = client_ca.map(|ca| write(dir, "client-ca.pem", &ca.pem()));
    xtask::testing::start(xtask::testing::builder().client_tls(cert, key, trusted))
}

fn client(endpoint: &str, tls: TlsConfig) -> Client {
    crate::builder()
        .endpoint(endpoint)
        .tls(tls)
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn trusting(ca: &Ca) -> TlsConfig {
    let mut tls = TlsConfig::default();
    tls.ca_pem = Some(ca.pem().into_bytes());
    tls
}

/// A call that must fail with a TLS error mentioning `cause`, at once (no retries).
async fn refused(client: &Client, what: &str, cause: &str) {
    refused_any(client, what, &[cause]).await
}

/// A call that must fail with a TLS error mentioning one of `causes`, at once.
async fn refused_any(client: &Client, what: &str, causes: &[&str]) {
    let started = Instant::now();
    let err = client.get("k").await.unwrap_err();
    let took = started.elapsed();
    let text = err.to_string();
    eprintln!("{what}: {took:?}: {text}");
    assert!(err.is_tls(), "{what}: {err:?}");
    assert!(causes.iter().any(|c| text.contains(c)), "{what}: {text}");
    assert!(
        err.endpoint().is_some_and(|e| text.contains(e)),
        "{what}: {text}"
    );
    assert!(!err.is_outcome_unknown(), "{what}: nothing was applied");
    assert!(
        took < Duration::from_secs(1),
        "{what}: one attempt, no backoff: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_certificates_custom_ca_and_every_problem_typed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let Some(etcd) = server(
        dir.path(),
        &ca.sign(&["127.0.0.1", "localhost"], false),
        None,
    ) else {
        return;
    };
    let endpoint = etcd.tls_endpoint(0).unwrap();

    // The custom CA works, for a call and for a watch.
    let good = client(&endpoint, trusting(&ca));
    good.put("tls/k", "v").await.unwrap();
    assert_eq!(good.get("tls/k").await.unwrap().unwrap().value(), b"v");
    drop(good.watch("tls/").prefix().await.unwrap());

    // No CA given: the system's roots do not know ours.
    refused(
        &client(&endpoint, TlsConfig::default()),
        "no CA",
        "UnknownIssuer",
    )
    .await;
    // Another CA.
    refused(
        &client(&endpoint, trusting(&Ca::new())),
        "wrong CA",
        "invalid peer certificate",
    )
    .await;
    // A certificate for another host name.
    let dir_name = tempfile::tempdir().unwrap();
    let other_name = server(dir_name.path(), &ca.sign(&["etcd.invalid"], false), None).unwrap();
    refused(
        &client(&other_name.tls_endpoint(0).unwrap(), trusting(&ca)),
        "wrong host name",
        "not valid for name",
    )
    .await;
    // An expired server certificate.
    let dir2 = tempfile::tempdir().unwrap();
    let expired = server(dir2.path(), &ca.sign(&["127.0.0.1"], true), None).unwrap();
    refused(
        &client(&expired.tls_endpoint(0).unwrap(), trusting(&ca)),
        "expired server certificate",
        "certificate expired",
    )
    .await;

    // Two endpoints with the same problem: each tried once, then a typed error.
    let both = crate::builder()
        .endpoints([endpoint.clone(), endpoint.clone()])
        .tls(trusting(&Ca::new()))
        .build()
        .unwrap();
    refused(&both, "two endpoints, wrong CA", "invalid peer certificate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate_the_server_trusts() {
    // One CA for the server and its clients: etcd's gateway calls its own gRPC server with
    // the server's certificate, which the server must trust as a client's.
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let clients = &ca;
    let Some(etcd) = server(
        dir.path(),
        &ca.sign(&["127.0.0.1", "localhost"], false),
        Some(clients),
    ) else {
        return;
    };
    let endpoint = etcd.tls_endpoint(0).unwrap();
    let with_identity = |signer: &Ca| {
        let mut tls = trusting(&ca);
        let (cert, key) = signer.sign(&["client"], false);
        tls.identity_pem = Some((cert.into_bytes(), key.into_bytes()));
        tls
    };

    // A certificate from the CA the server trusts for clients works.
    let good = client(&endpoint, with_identity(clients));
    good.put("mtls/k", "v").await.unwrap();

    // None at all, or one the server does not trust: refused, typed. etcd built with an
    // older Go (3.4.23, 3.5.1) sends the TLS alert bad_certificate for both; one built with
    // a newer Go (3.5.30) TLS 1.3's certificate_required, then unknown_ca.
    refused_any(
        &client(&endpoint, trusting(&ca)),
        "no client certificate",
        &["BadCertificate", "CertificateRequired"],
    )
    .await;
    refused_any(
        &client(&endpoint, with_identity(&Ca::new())),
        "untrusted client certificate",
        &["BadCertificate", "UnknownCA"],
    )
    .await;
}
