//! HTTPS for the fake upstream: a certificate authority made at test time (so no test depends
//! on a certificate checked into the tree, or on one that expires), the server certificate it
//! signs for `localhost` and `127.0.0.1`, and the TLS accept loop that serves the fake's router
//! with HTTP/2 or HTTP/1.1, as the client's ALPN chooses.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take over its TLS handshake before the fake drops the connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority that exists for one test run: clients trust it only when told to
/// (e.g. Keyway through `SSL_CERT_FILE`, see [`TestCa::write_pem`]), never by default.
pub struct TestCa {
    /// The CA's self-signed certificate.
    cert: rcgen::Certificate,
    /// Its parameters and key, to sign server certificates with.
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA (`CN=Keyway Test CA`) with a fresh key.
    ///
    /// # Panics
    /// If rcgen cannot make a key or a certificate (the test can't run at all then).
    pub fn new() -> TestCa {
        Self::generate().expect("fake TLS: generate a test CA")
    }

    fn generate() -> Result<TestCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Keyway Test CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "keyway-tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate in PEM (`-----BEGIN CERTIFICATE-----`…).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate in DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Writes [`TestCa::pem`] to `dir/test-ca.pem` and returns that path: the file to name in
    /// `SSL_CERT_FILE`.
    pub fn write_pem(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, self.pem())?;
        Ok(path)
    }

    /// A server certificate signed by this CA for `localhost` and `127.0.0.1`, with its key:
    /// what [`super::FakeConfig::tls`] takes.
    ///
    /// # Panics
    /// If rcgen cannot make the key or the certificate.
    pub fn localhost_identity(&self) -> TlsIdentity {
        self.identity(&["localhost", "127.0.0.1"])
            .expect("fake TLS: sign a localhost server certificate")
    }

    /// A server certificate signed by this CA for `names` (DNS names or IP addresses).
    pub fn identity(&self, names: &[&str]) -> Result<TlsIdentity, rcgen::Error> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(TlsIdentity {
            chain: vec![cert.der().clone()],
            key: Arc::new(PrivatePkcs8KeyDer::from(key.serialize_der()).into()),
        })
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A server's certificate chain (leaf first) and private key, for [`super::FakeConfig::tls`].
/// Made by [`TestCa::localhost_identity`].
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// A rustls server config (ring provider) presenting this identity, offering `h2` and
    /// `http/1.1` by ALPN.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serves `app` on `listener` over TLS until the task is aborted: each connection's handshake
/// (bounded by [`HANDSHAKE_TIMEOUT`]), then hyper's auto server, which speaks HTTP/2 when the
/// client sends its preface (as it does after negotiating `h2`) and HTTP/1.1 otherwise.
pub(crate) async fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>, app: Router) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // A connection that failed before it was accepted, or a resource limit: the fake
            // has nobody to report it to; the client sees its connection fail.
            Err(e) => {
                if !is_connection_error(&e) {
                    // Out of descriptors and the like: give the process a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        // Nagle off, as on the plain path (see `FakeUpstream::start_with`).
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that does not trust the certificate aborts the handshake: that is the
            // client's answer, nothing for the fake to do.
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
