//! HTTPS: the serving certificate (the given files, or a self-signed one generated at
//! start, as every aggregated API server does without `--tls-cert-file`, for
//! `localhost`, the pod's name and the Service's names), and client certificates
//! requested but not required: the front proxy and certificate users present one,
//! token users do not. Which CA signed a presented certificate is decided later, in
//! [`crate::auth`], since the front proxy's CA and the client CA mean different things.
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::Error;

/// The certificates of a PEM bundle.
///
/// # Errors
/// Not PEM, or no certificate in it.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

/// The serving certificate chain and key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The certificate in PEM (for `caBundle`, when self-signed).
    pub pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

fn read_small(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)
        .map_err(|e| Error::Tls(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    f.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Tls(format!("cannot read {}: {e}", path.display())))?;
    if out.len() as u64 > MAX_PEM_BYTES {
        return Err(Error::Tls(format!(
            "{}: larger than 1MiB: not a certificate or key",
            path.display()
        )));
    }
    Ok(out)
}

impl Identity {
    /// `--tls-cert-file` and `--tls-private-key-file`.
    ///
    /// # Errors
    /// Unreadable, not PEM, or no certificate or key in them.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        let pem = read_small(cert)?;
        let chain = certificates_from_pem(&pem)
            .map_err(|e| Error::Tls(format!("{}: {e}", cert.display())))?;
        let key_pem = read_small(key)?;
        // The key's bytes never reach a message.
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| Error::Tls(format!("{}: no PEM private key in it", key.display())))?;
        Ok(Self {
            chain,
            key,
            pem: String::from_utf8_lossy(&pem).into_owned(),
        })
    }

    /// A self-signed certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// A name is neither.
    pub fn self_signed(names: &[String]) -> Result<Self, Error> {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| Error::Tls(format!("cannot generate a self-signed certificate: {e}")))?;
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| Error::Tls(format!("generated key: {e}")))?;
        Ok(Self {
            chain: vec![ck.cert.der().clone()],
            pem: ck.cert.pem(),
            key,
        })
    }
}

/// Client certificate verification whose CAs can change: the front proxy's and the
/// client CA are re-read from the cluster, as upstream's dynamic CA content
/// (`DynamicFileCAContent`, the ConfigMap controller) follows a rotation without a
/// restart. A certificate is requested only while some CA is known.
pub struct ClientCas {
    inner: RwLock<Option<Arc<dyn ClientCertVerifier>>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for ClientCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCas").finish_non_exhaustive()
    }
}

impl ClientCas {
    /// # Errors
    /// A CA is unusable.
    pub fn new(cas: &[CertificateDer<'static>]) -> Result<Arc<Self>, Error> {
        let this = Arc::new(Self {
            inner: RwLock::new(None),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        });
        this.set(cas)?;
        Ok(this)
    }

    /// Replaces the CAs.
    ///
    /// # Errors
    /// A CA is unusable (the old ones stay).
    pub fn set(&self, cas: &[CertificateDer<'static>]) -> Result<(), Error> {
        let verifier = if cas.is_empty() {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| Error::Tls(format!("unusable client CA: {e}")))?;
            }
            Some(
                WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&self.provider),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Tls(format!("unusable client CA: {e}")))?,
            )
        };
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = verifier;
        Ok(())
    }

    fn current(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientCertVerifier for ClientCas {
    fn offer_client_auth(&self) -> bool {
        self.current().is_some()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: they would borrow from the swappable CAs. Go's TLS client (the
    /// aggregator's) sends its certificate when the request names no CA.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.current() {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::General("no client CA is configured".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS server configuration: `identity`, HTTP/1.1, and client certificates
/// verified against `client_cas` when presented (none required).
///
/// # Errors
/// The key does not match the certificate.
pub fn server_config(
    identity: Identity,
    client_cas: Arc<ClientCas>,
) -> Result<rustls::ServerConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(client_cas)
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| Error::Tls(format!("the key does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The parts of a certificate's subject that name a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub common_name: Option<String>,
    pub organizations: Vec<String>,
}

/// The subject's CN and O (the API server's `x509.CommonNameUserConversion`): a
/// small DER walk, bounded by the certificate's bytes; a malformed certificate has
/// an empty subject.
pub fn subject(cert: &CertificateDer<'_>) -> Subject {
    subject_of(cert.as_ref()).unwrap_or_default()
}

fn subject_of(der: &[u8]) -> Option<Subject> {
    let (cert, _) = tlv(der, 0x30)?;
    let (tbs, _) = tlv(cert, 0x30)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30, 0x30] {
        // serialNumber, signature, issuer, validity
        rest = tlv(rest, tag)?.1;
    }
    let (mut name, _) = tlv(rest, 0x30)?;
    let mut out = Subject::default();
    while !name.is_empty() {
        let (mut set, after) = tlv(name, 0x31)?;
        name = after;
        while !set.is_empty() {
            let (atv, after) = tlv(set, 0x30)?;
            set = after;
            let (oid, value) = tlv(atv, 0x06)?;
            let (&tag, _) = value.split_first()?;
            let (text, _) = tlv(value, tag)?;
            let text = String::from_utf8_lossy(text).into_owned();
            match oid {
                [0x55, 0x04, 0x03] => out.common_name = Some(text),
                [0x55, 0x04, 0x0a] => out.organizations.push(text),
                _ => {}
            }
        }
    }
    Some(out)
}

/// One DER element of tag `tag`: its contents and what follows it.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_user_and_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "front-proxy-client");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            subject(cert.der()),
            Subject {
                common_name: Some("front-proxy-client".into()),
                organizations: vec!["system:masters".into()],
            }
        );
    }

    #[test]
    fn malformed_certificates_have_no_subject() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01",
        ] {
            assert_eq!(
                subject(&CertificateDer::from(bad.to_vec())),
                Subject::default()
            );
        }
    }

    #[test]
    fn certificate_files_are_read_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("podscale-adapter-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ck =
            rcgen::generate_simple_self_signed(vec!["adapter.example".to_owned()]).expect("cert");
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, ck.cert.pem()).expect("write");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write");
        let id = Identity::from_files(&cert, &key).expect("identity");
        assert_eq!(id.chain.len(), 1);
        server_config(id, ClientCas::new(&[]).expect("no CA")).expect("server config");
        // A key that is not PEM: named, never quoted.
        std::fs::write(&key, "secret-material").expect("write");
        let e = Identity::from_files(&cert, &key)
            .expect_err("no key")
            .to_string();
        assert!(e.contains("tls.key: no PEM private key"), "{e}");
        assert!(!e.contains("secret-material"), "{e}");
        // A certificate file that holds no certificate.
        std::fs::write(&cert, "hello").expect("write");
        let e = Identity::from_files(&cert, &key)
            .expect_err("no cert")
            .to_string();
        assert!(e.contains("tls.crt"), "{e}");
        let e = Identity::from_files(&dir.join("missing.crt"), &key)
            .expect_err("missing")
            .to_string();
        assert!(
            e.contains("cannot read") && e.contains("missing.crt"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_self_signed_identity_builds_a_server_config() {
        let id = Identity::self_signed(&["localhost".into(), "127.0.0.1".into()]).expect("id");
        assert!(id.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        server_config(id, ClientCas::new(&[]).expect("no CA")).expect("server config");
    }
}
