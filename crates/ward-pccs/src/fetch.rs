//! The PCCS / Intel PCS v4 client.

use crate::error::{Error, Result};
use crate::key::{CollateralKey, Tee};
use crate::shape;
use std::fmt;
use std::io::Read;
use std::time::Duration;
use ward_attest::dcap::{Collateral, CollateralParts};
use ward_attest::quote::Quote;

/// Intel's Provisioning Certification Service.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// The CRL distribution point of the Intel SGX Root CA, where the root CA CRL comes from when
/// the base URL is Intel PCS (which has no `rootcacrl` endpoint).
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Default limit on the time one request may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on the size of one response body. Intel's largest piece of collateral, a
/// PCK CRL, is tens of kilobytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 << 20;

const PCS_HOST: &str = "api.trustedservices.intel.com";
/// How much of an error response's body is quoted in the error.
const ERROR_BODY_EXCERPT: u64 = 200;

/// A client for the PCCS/PCS v4 collateral API at one base URL.
///
/// Blocking HTTP(S) (rustls, Mozilla's roots unless [`Pccs::with_tls_roots_pem`] says
/// otherwise; plain `http://` works too). Every request has a timeout and a response size limit.
/// HTTP proxies are taken from the usual `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` environment.
#[derive(Clone)]
pub struct Pccs {
    base: String,
    root_ca_crl_url: String,
    timeout: Duration,
    max_response_bytes: u64,
    tls_roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    agent: ureq::Agent,
}

impl fmt::Debug for Pccs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pccs")
            .field("base_url", &self.base)
            .field("root_ca_crl_url", &self.root_ca_crl_url)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("custom_tls_roots", &self.tls_roots.as_ref().map(Vec::len))
            .finish()
    }
}

impl Pccs {
    /// A client for the PCCS or PCS at `base_url`: `https://api.trustedservices.intel.com`
    /// ([`INTEL_PCS_URL`]) or a PCCS such as `https://localhost:8081`. A trailing `/` or a
    /// trailing `/sgx/certification/v4` is accepted and dropped. The root CA CRL comes from
    /// `{base}/sgx/certification/v4/rootcacrl` for a PCCS and from [`INTEL_ROOT_CA_CRL_URL`]
    /// for Intel PCS (change it with [`Pccs::with_root_ca_crl_url`]).
    pub fn new(base_url: &str) -> Result<Pccs> {
        let base = normalise_base(base_url)?;
        let root_ca_crl_url = if host_of(&base).eq_ignore_ascii_case(PCS_HOST) {
            INTEL_ROOT_CA_CRL_URL.to_string()
        } else {
            format!("{base}/sgx/certification/v4/rootcacrl")
        };
        let mut pccs = Pccs {
            base,
            root_ca_crl_url,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            tls_roots: None,
            agent: ureq::Agent::new_with_defaults(),
        };
        pccs.rebuild_agent();
        Ok(pccs)
    }

    /// Sets the limit on the time one request may take (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Pccs {
        self.timeout = timeout;
        self.rebuild_agent();
        self
    }

    /// Sets the limit on the size of one response body (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]); a larger body is refused with [`Error::TooLarge`].
    pub fn with_max_response_bytes(mut self, limit: u64) -> Pccs {
        self.max_response_bytes = limit;
        self
    }

    /// Fetches the root CA CRL from `url` instead (DER, hex or PEM).
    pub fn with_root_ca_crl_url(mut self, url: &str) -> Result<Pccs> {
        let url = url.trim();
        check_http_url(url)?;
        self.root_ca_crl_url = url.to_string();
        Ok(self)
    }

    /// Trusts only the CA certificates in `pem` for HTTPS (e.g. the one a PCCS's self-signed
    /// certificate was made with) instead of Mozilla's roots. Collateral is signed by Intel
    /// and verified against Intel's root whoever serves it; TLS protects only its freshness and
    /// the privacy of the request.
    pub fn with_tls_roots_pem(mut self, pem: &str) -> Result<Pccs> {
        let blocks = pem::parse_many(pem).map_err(|e| Error::TlsRoots(format!("not PEM: {e}")))?;
        let certs: Vec<_> = blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| ureq::tls::Certificate::from_der(b.contents()).to_owned())
            .collect();
        if certs.is_empty() {
            return Err(Error::TlsRoots("no CERTIFICATE block in the PEM".into()));
        }
        self.tls_roots = Some(certs);
        self.rebuild_agent();
        Ok(self)
    }

    /// The base URL requests go to (normalised: no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Where the root CA CRL is fetched from.
    pub fn root_ca_crl_url(&self) -> &str {
        &self.root_ca_crl_url
    }

    /// Fetches the collateral `quote` needs: the TCB info and QE identity of its TEE and
    /// FMSPC, the PCK CRL of the CA that issued its PCK certificate, and the root CA CRL. The
    /// result is not verified: pass it to `DcapVerifier::verify`.
    pub fn fetch(&self, quote: &Quote) -> Result<Collateral> {
        self.fetch_key(&CollateralKey::from_quote(quote)?)
    }

    /// Fetches the collateral for `key` (four GET requests).
    pub fn fetch_key(&self, key: &CollateralKey) -> Result<Collateral> {
        tracing::debug!(base = %self.base, %key, "fetching DCAP collateral");

        let url = self.url(
            Tee::Sgx,
            &format!("pckcrl?ca={}&encoding=der", key.ca.as_str()),
        );
        let r = self.get(&url)?;
        let pck_crl_issuer_chain = r.pem_chain_header(&["SGX-PCK-CRL-Issuer-Chain"])?;
        let pck_crl = shape::crl_der(&r.body).map_err(|e| r.bad_body(format!("PCK CRL: {e}")))?;

        let url = self.url(key.tee, &format!("tcb?fmspc={}", key.fmspc_hex()));
        let r = self.get(&url)?;
        let tcb_info_issuer_chain =
            r.pem_chain_header(&["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"])?;
        let tcb = shape::signed_object(&r.body, "tcbInfo").map_err(|e| r.bad_body(e))?;
        shape::tcb_info_next_update(&tcb.text, key.tee, Some(&key.fmspc))
            .map_err(|e| r.bad_body(e))?;

        let url = self.url(key.tee, "qe/identity");
        let r = self.get(&url)?;
        let qe_identity_issuer_chain =
            r.pem_chain_header(&["SGX-Enclave-Identity-Issuer-Chain"])?;
        let qe = shape::signed_object(&r.body, "enclaveIdentity").map_err(|e| r.bad_body(e))?;
        shape::qe_identity_next_update(&qe.text, key.tee).map_err(|e| r.bad_body(e))?;

        let r = self.get(&self.root_ca_crl_url)?;
        let root_ca_crl =
            shape::crl_der(&r.body).map_err(|e| r.bad_body(format!("root CA CRL: {e}")))?;

        Collateral::from_parts(CollateralParts {
            pck_crl_issuer_chain,
            root_ca_crl,
            pck_crl,
            tcb_info_issuer_chain,
            tcb_info: tcb.text,
            tcb_info_signature: tcb.signature,
            qe_identity_issuer_chain,
            qe_identity: qe.text,
            qe_identity_signature: qe.signature,
        })
        .map_err(|source| Error::Collateral {
            base_url: self.base.clone(),
            source,
        })
    }

    fn url(&self, tee: Tee, path: &str) -> String {
        format!("{}/{}/certification/v4/{}", self.base, tee.as_str(), path)
    }

    fn rebuild_agent(&mut self) {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = &self.tls_roots {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(roots));
        }
        self.agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("ward-pccs/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .new_agent();
    }

    fn get(&self, url: &str) -> Result<Response> {
        tracing::debug!(url, "GET");
        let transport = |e: ureq::Error| Error::Transport {
            url: url.to_string(),
            note: match e {
                ureq::Error::Timeout(_) => {
                    format!(" (no complete answer within {:?})", self.timeout)
                }
                _ => String::new(),
            },
            source: e,
        };
        let mut response = self.agent.get(url).call().map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let mut detail = String::new();
            for h in ["Error-Code", "Error-Message"] {
                if let Some(v) = response.headers().get(h).and_then(|v| v.to_str().ok()) {
                    detail.push_str(&format!(", {h}: {v}"));
                }
            }
            let mut start = Vec::new();
            let _ = response
                .body_mut()
                .as_reader()
                .take(ERROR_BODY_EXCERPT)
                .read_to_end(&mut start);
            if !start.is_empty() {
                detail.push_str(&format!(", body {}", shape::excerpt(&start)));
            }
            if let Some(reason) = status.canonical_reason() {
                detail.insert_str(0, &format!(" {reason}"));
            }
            return Err(Error::Status {
                url: url.to_string(),
                status: status.as_u16(),
                detail,
            });
        }
        let limit = self.max_response_bytes;
        if response.body().content_length().is_some_and(|n| n > limit) {
            return Err(Error::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                e => transport(e),
            })?;
        Ok(Response {
            url: url.to_string(),
            headers: response.headers().clone(),
            body,
        })
    }
}

/// A 2xx response, read whole.
struct Response {
    url: String,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Response {
    fn bad_body(&self, reason: String) -> Error {
        Error::BadBody {
            url: self.url.clone(),
            reason,
        }
    }

    /// The first of `names` present, URL-decoded, which must hold a PEM certificate chain.
    fn pem_chain_header(&self, names: &[&str]) -> Result<String> {
        let Some((name, value)) = names
            .iter()
            .find_map(|n| self.headers.get(*n).map(|v| (*n, v)))
        else {
            return Err(Error::MissingHeader {
                url: self.url.clone(),
                header: names.join(" or "),
            });
        };
        let bad = |reason: String| Error::BadHeader {
            url: self.url.clone(),
            header: name.to_string(),
            reason,
        };
        let raw = value
            .to_str()
            .map_err(|_| bad("not visible ASCII".into()))?;
        let chain = percent_decode(raw).map_err(bad)?;
        if !chain.contains("-----BEGIN CERTIFICATE-----") {
            return Err(bad(format!(
                "no PEM certificate after URL-decoding; starts {}",
                shape::excerpt(chain.as_bytes())
            )));
        }
        Ok(chain)
    }
}

/// Decodes `%XX` escapes (a `+` stays a `+`: base64 uses it).
fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad URL escape at offset {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after URL-decoding".to_string())
}

fn normalise_base(url: &str) -> Result<String> {
    let mut base = url.trim().trim_end_matches('/');
    for suffix in ["/sgx/certification/v4", "/tdx/certification/v4"] {
        base = base.strip_suffix(suffix).unwrap_or(base);
    }
    let base = base.trim_end_matches('/');
    check_http_url(base).map_err(|e| match e {
        Error::InvalidUrl { reason, .. } => Error::InvalidUrl {
            url: url.to_string(),
            reason,
        },
        e => e,
    })?;
    Ok(base.to_string())
}

fn check_http_url(url: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        })
    };
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return bad("must start with https:// or http://");
    };
    if host_of(url).is_empty() || rest.starts_with(':') {
        return bad("no host");
    }
    if url.contains(['?', '#']) {
        return bad("a base URL has no query or fragment");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace");
    }
    Ok(())
}

/// The host of an `http(s)://host[:port]/…` URL (lower-case comparison is up to the caller).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port
            .split_once(']')
            .map_or(host_port, |(h, _)| &h[1..]);
    }
    host_port.split(':').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for (given, want) in [
            ("https://api.trustedservices.intel.com", INTEL_PCS_URL),
            ("https://api.trustedservices.intel.com/", INTEL_PCS_URL),
            (
                "https://api.trustedservices.intel.com/sgx/certification/v4/",
                INTEL_PCS_URL,
            ),
            ("  https://localhost:8081/ ", "https://localhost:8081"),
            ("http://127.0.0.1:9/pccs", "http://127.0.0.1:9/pccs"),
        ] {
            assert_eq!(Pccs::new(given).unwrap().base_url(), want, "{given}");
        }
        for bad in [
            "",
            "localhost:8081",
            "ftp://x",
            "https://",
            "https://:80",
            "https://x?y=1",
            "https://a b",
        ] {
            let e = Pccs::new(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidUrl { .. }), "{bad}: {e}");
        }
        assert_eq!(
            Pccs::new(INTEL_PCS_URL).unwrap().root_ca_crl_url(),
            INTEL_ROOT_CA_CRL_URL
        );
        assert_eq!(
            Pccs::new("https://localhost:8081/")
                .unwrap()
                .root_ca_crl_url(),
            "https://localhost:8081/sgx/certification/v4/rootcacrl"
        );
        assert_eq!(host_of("https://u@[::1]:8081/x"), "::1");
        assert_eq!(host_of("http://h:1"), "h");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("-----BEGIN%20CERT%0Aab+/=%2B%2f").unwrap(),
            "-----BEGIN CERT\nab+/=+/"
        );
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
