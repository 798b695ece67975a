//! Reading the pieces of collateral out of what a PCCS/PCS serves, and when they expire.
//! Shape only: nothing here checks a signature.

use crate::Tee;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use ward_attest::time::parse_rfc3339;
use x509_cert::der::Decode;

/// A signed object as the PCS serves it: `{"tcbInfo": {…}, "signature": "<hex>"}`.
#[derive(Debug)]
pub(crate) struct Signed {
    /// The exact text of the signed object, byte for byte as served.
    pub text: String,
    /// The signature, r || s.
    pub signature: Vec<u8>,
}

/// Splits a PCS response body into the signed object `field` and its signature.
pub(crate) fn signed_object(body: &[u8], field: &str) -> Result<Signed, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8 text: {e}"))?;
    let object: BTreeMap<String, &RawValue> = serde_json::from_str(text)
        .map_err(|e| format!("body is not a JSON object: {e}; starts {}", excerpt(body)))?;
    let signed = object
        .get(field)
        .ok_or_else(|| format!("JSON body has no `{field}` field"))?
        .get();
    if !signed.starts_with('{') {
        return Err(format!("`{field}` is not a JSON object"));
    }
    let signature = object
        .get("signature")
        .ok_or_else(|| "JSON body has no `signature` field".to_string())?;
    let signature: String = serde_json::from_str(signature.get())
        .map_err(|_| "`signature` is not a string".to_string())?;
    let signature =
        hex::decode(signature.trim()).map_err(|e| format!("`signature` is not hex: {e}"))?;
    if signature.len() != 64 {
        return Err(format!(
            "`signature` is {} bytes, not the 64 of an ECDSA P-256 r || s",
            signature.len()
        ));
    }
    Ok(Signed {
        text: signed.to_string(),
        signature,
    })
}

/// The fields of a TCB info or QE identity that say what it is for and until when.
#[derive(Deserialize)]
struct Header {
    id: Option<String>,
    fmspc: Option<String>,
    #[serde(rename = "nextUpdate")]
    next_update: String,
}

/// Checks that a TCB info is for `tee` and `fmspc`; returns its `nextUpdate` (unix seconds).
pub(crate) fn tcb_info_next_update(
    text: &str,
    tee: Tee,
    fmspc: Option<&[u8; 6]>,
) -> Result<u64, String> {
    let h: Header =
        serde_json::from_str(text).map_err(|e| format!("TCB info is not usable JSON: {e}"))?;
    let want = match tee {
        Tee::Sgx => "SGX",
        Tee::Tdx => "TDX",
    };
    if let Some(id) = &h.id {
        if id != want {
            return Err(format!("TCB info is for {id:?}, not {want}"));
        }
    }
    if let Some(want) = fmspc {
        let got = h.fmspc.as_deref().unwrap_or("");
        if !got.eq_ignore_ascii_case(&hex::encode(want)) {
            return Err(format!(
                "TCB info is for FMSPC {got:?}, not {}",
                hex::encode_upper(want)
            ));
        }
    }
    parse_rfc3339(&h.next_update)
        .ok_or_else(|| format!("TCB info nextUpdate {:?} is not RFC 3339", h.next_update))
}

/// Checks that a QE identity is for `tee`'s quoting enclave; returns its `nextUpdate`.
pub(crate) fn qe_identity_next_update(text: &str, tee: Tee) -> Result<u64, String> {
    let h: Header =
        serde_json::from_str(text).map_err(|e| format!("QE identity is not usable JSON: {e}"))?;
    let want = match tee {
        Tee::Sgx => "QE",
        Tee::Tdx => "TD_QE",
    };
    if let Some(id) = &h.id {
        if id != want {
            return Err(format!("QE identity is for {id:?}, not {want}"));
        }
    }
    parse_rfc3339(&h.next_update)
        .ok_or_else(|| format!("QE identity nextUpdate {:?} is not RFC 3339", h.next_update))
}

/// A CRL body as DER: PCS serves DER; some PCCS versions serve hex (or PEM).
pub(crate) fn crl_der(body: &[u8]) -> Result<Vec<u8>, String> {
    let der = if body.first() == Some(&0x30) {
        body.to_vec()
    } else {
        let text = std::str::from_utf8(body)
            .map_err(|_| {
                format!(
                    "not a CRL (neither DER, hex nor PEM); starts {}",
                    excerpt(body)
                )
            })?
            .trim();
        if text.starts_with("-----BEGIN") {
            let block = pem::parse(text).map_err(|e| format!("CRL PEM: {e}"))?;
            if block.tag() != "X509 CRL" {
                return Err(format!("PEM block {:?}, not X509 CRL", block.tag()));
            }
            block.into_contents()
        } else {
            hex::decode(text).map_err(|_| {
                format!(
                    "not a CRL (neither DER, hex nor PEM); starts {}",
                    excerpt(body)
                )
            })?
        }
    };
    crl_next_update(&der)?;
    Ok(der)
}

/// The `nextUpdate` of a DER CRL (unix seconds); refuses anything that is not a CRL.
pub(crate) fn crl_next_update(der: &[u8]) -> Result<u64, String> {
    let crl: x509_cert::crl::CertificateList = x509_cert::crl::CertificateList::from_der(der)
        .map_err(|e| format!("not a DER X.509 CRL: {e}"))?;
    let next = crl
        .tbs_cert_list
        .next_update
        .ok_or_else(|| "CRL has no nextUpdate".to_string())?;
    Ok(next.to_unix_duration().as_secs())
}

/// The start of a body for an error message: printable ASCII, at most 80 characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let mut s: String = String::from_utf8_lossy(&body[..body.len().min(80)])
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '.'
            }
        })
        .collect();
    if body.len() > 80 {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_object_keeps_exact_text() {
        let sig = "ab".repeat(64);
        let body = format!(r#"{{ "tcbInfo" : {{"b":1,  "a":[2, 3]}} , "signature":"{sig}"}}"#);
        let s = signed_object(body.as_bytes(), "tcbInfo").unwrap();
        assert_eq!(s.text, r#"{"b":1,  "a":[2, 3]}"#);
        assert_eq!(s.signature, vec![0xab; 64]);
        assert!(signed_object(b"<html>", "tcbInfo")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(signed_object(br#"{"signature":"00"}"#, "tcbInfo")
            .unwrap_err()
            .contains("no `tcbInfo`"));
        assert!(
            signed_object(br#"{"tcbInfo":{},"signature":"zz"}"#, "tcbInfo")
                .unwrap_err()
                .contains("not hex")
        );
        assert!(
            signed_object(br#"{"tcbInfo":{},"signature":"00"}"#, "tcbInfo")
                .unwrap_err()
                .contains("64")
        );
        assert!(
            signed_object(br#"{"tcbInfo":[],"signature":"00"}"#, "tcbInfo")
                .unwrap_err()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn crl_forms() {
        assert!(crl_der(b"garbage").unwrap_err().contains("neither DER"));
        assert!(crl_der(&[0x30, 0x03, 1, 2, 3]).unwrap_err().contains("CRL"));
        assert!(crl_der(&[0xff, 0x00]).unwrap_err().contains("neither DER"));
    }
}
