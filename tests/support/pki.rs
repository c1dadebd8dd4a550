//! A test PKI for the encrypted listeners: a CA made here (rcgen) and a server certificate it
//! issued, as the PEM files `tls_cert` / `tls_key` name, valid now or already expired.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;

/// A test CA and a leaf certificate it issued for one name.
pub struct Pki {
    /// The CA certificate (what clients trust).
    pub ca: CertificateDer<'static>,
    /// The CA certificate as PEM (for kdig's `+tls-ca`, curl's `--cacert`).
    pub ca_pem: String,
    /// The leaf, then the CA: what `tls_cert` holds.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM): what `tls_key` holds.
    pub key_pem: String,
}

impl Pki {
    /// A CA named `ca_name` and a leaf for `name`, valid from now for the default period.
    pub fn new(ca_name: &str, name: &str) -> Pki {
        Self::build(ca_name, name, false)
    }

    /// As [`Pki::new`], but the leaf expired long ago (valid in 2020 only).
    pub fn expired(ca_name: &str, name: &str) -> Pki {
        Self::build(ca_name, name, true)
    }

    fn build(ca_name: &str, name: &str, expired: bool) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec![name.to_owned()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, name);
        if expired {
            leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        Pki {
            ca: ca_cert.der().clone(),
            ca_pem: ca_cert.pem(),
            chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    /// `cert.pem` and `key.pem`, as `support::pg::start` writes files into the config folder.
    pub fn files(&self) -> [(&'static str, &str); 2] {
        [("cert.pem", &self.chain_pem), ("key.pem", &self.key_pem)]
    }
}
