//! Which collateral a quote needs: TEE, FMSPC and the CA that issued its PCK certificate.

use crate::error::{Error, Result};
use std::fmt;
use ward_attest::quote::Quote;
use ward_attest::TeeKind;
use x509_cert::der::Decode;

/// The TEE whose TCB info and QE identity are needed (`/sgx/…` or `/tdx/…` endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tee {
    /// Intel SGX.
    Sgx,
    /// Intel TDX.
    Tdx,
}

impl Tee {
    /// The path segment of the PCS API: `sgx` or `tdx`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Tee::Sgx => "sgx",
            Tee::Tdx => "tdx",
        }
    }
}

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Intel CA that issued a PCK certificate, which decides the PCK CRL to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PckCa {
    /// "Intel SGX PCK Processor CA".
    Processor,
    /// "Intel SGX PCK Platform CA".
    Platform,
}

impl PckCa {
    /// The `ca` query value of the PCK CRL endpoint: `processor` or `platform`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PckCa::Processor => "processor",
            PckCa::Platform => "platform",
        }
    }

    /// The CA's certificate common name.
    pub fn common_name(&self) -> &'static str {
        match self {
            PckCa::Processor => "Intel SGX PCK Processor CA",
            PckCa::Platform => "Intel SGX PCK Platform CA",
        }
    }
}

impl fmt::Display for PckCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a set of collateral: everything in it but the CRLs' and root's contents
/// follows from these three (and the cache is keyed by them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CollateralKey {
    /// SGX or TDX.
    pub tee: Tee,
    /// The platform's FMSPC (family-model-stepping-platform-custom SKU).
    pub fmspc: [u8; 6],
    /// The CA that issued the PCK certificate.
    pub ca: PckCa,
}

impl CollateralKey {
    /// Reads the key from a parsed quote: its TEE, and the FMSPC and issuer of the PCK leaf
    /// certificate in its certification data (type 5, the PEM chain).
    pub fn from_quote(quote: &Quote) -> Result<CollateralKey> {
        let tee = match quote.tee() {
            TeeKind::Sgx => Tee::Sgx,
            TeeKind::Tdx => Tee::Tdx,
            other => {
                return Err(Error::Quote(format!(
                    "a {other} quote has no Intel collateral"
                )))
            }
        };
        let pem = quote.pck_chain_pem().ok_or_else(|| {
            Error::Quote(format!(
                "no PCK certificate chain in the quote (certification data type {}; only type 5, the PEM chain, is handled)",
                quote.signature_data.cert_data_type
            ))
        })?;
        CollateralKey::from_pck_chain_pem(tee, pem)
    }

    /// Reads FMSPC and issuing CA from the first (leaf) certificate of a PEM PCK chain.
    pub fn from_pck_chain_pem(tee: Tee, pem_chain: &str) -> Result<CollateralKey> {
        let blocks = pem::parse_many(pem_chain)
            .map_err(|e| Error::Quote(format!("PCK certificate chain is not PEM: {e}")))?;
        let leaf = blocks
            .first()
            .ok_or_else(|| Error::Quote("PCK certificate chain is empty".into()))?;
        if leaf.tag() != "CERTIFICATE" {
            return Err(Error::Quote(format!(
                "PCK certificate chain starts with a PEM block {:?}, not CERTIFICATE",
                leaf.tag()
            )));
        }
        let der = leaf.contents();
        let extension = dcap_qvl::intel::parse_pck_extension(der).map_err(|e| {
            Error::Quote(format!(
                "PCK certificate: Intel SGX extension (OID 1.2.840.113741.1.13.1): {e:#}"
            ))
        })?;
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| Error::Quote(format!("PCK certificate is not DER X.509: {e}")))?;
        let issuer = cert.tbs_certificate().issuer();
        let cn = issuer
            .common_name()
            .map_err(|e| Error::Quote(format!("PCK certificate issuer CN: {e}")))?
            .map(|cn| cn.value().into_owned());
        let ca = match cn.as_deref() {
            Some(cn) if cn == PckCa::Processor.common_name() => PckCa::Processor,
            Some(cn) if cn == PckCa::Platform.common_name() => PckCa::Platform,
            _ => {
                return Err(Error::Quote(format!(
                    "PCK certificate issued by {issuer}, neither {:?} nor {:?}",
                    PckCa::Processor.common_name(),
                    PckCa::Platform.common_name()
                )))
            }
        };
        Ok(CollateralKey {
            tee,
            fmspc: extension.fmspc,
            ca,
        })
    }

    /// The FMSPC as the PCS API spells it: 12 upper-case hex digits.
    pub fn fmspc_hex(&self) -> String {
        hex::encode_upper(self.fmspc)
    }

    /// The cache file name: `sgx-00606a000000-platform.json`.
    pub(crate) fn file_name(&self) -> String {
        format!("{}-{}-{}.json", self.tee, hex::encode(self.fmspc), self.ca)
    }
}

impl fmt::Display for CollateralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} FMSPC {} ({} CA)",
            self.tee.as_str().to_uppercase(),
            self.fmspc_hex(),
            self.ca
        )
    }
}
