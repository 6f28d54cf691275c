//! A throwaway CA and a server certificate for `localhost` / `127.0.0.1`, made with rcgen.
//!
//! rustls does not accept a self-signed certificate as its own trust anchor, so this is a
//! real two-level chain: a CA (`CA:TRUE`, keyCertSign) and a leaf (`CA:FALSE`, serverAuth,
//! SAN `DNS:localhost, IP:127.0.0.1`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of the test PKI.
#[derive(Clone)]
pub struct TestPki {
    /// The CA certificate (what the client must trust).
    pub ca_cert: PathBuf,
    /// The leaf certificate followed by the CA certificate.
    pub leaf_cert: PathBuf,
    /// The leaf's private key.
    pub leaf_key: PathBuf,
}

impl TestPki {
    /// Generates the CA and the leaf and writes them into `dir`.
    pub fn generate(dir: &Path) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "provision-server test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let pki = TestPki {
            ca_cert: dir.join("ca.pem"),
            leaf_cert: dir.join("server-chain.pem"),
            leaf_key: dir.join("server-key.pem"),
        };
        std::fs::write(&pki.ca_cert, ca_cert.pem()).unwrap();
        std::fs::write(
            &pki.leaf_cert,
            format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        )
        .unwrap();
        std::fs::write(&pki.leaf_key, leaf_key.serialize_pem()).unwrap();
        pki
    }
}
