//! Typed parsing of Intel DCAP quotes (ECDSA P-256) at the boundary.
//!
//! Handles SGX quotes v3 and TDX quotes v4 and v5 (TD report 1.0, 1.5 and 1.5 "ex"; a v5 quote
//! carrying an SGX report body is parsed too). Parsing checks structure only: every length is
//! checked against what is actually there, every version, TEE type and body type against what ward
//! understands, and any problem is refused with the field and byte offset that were wrong. Nothing
//! here checks a signature or a certificate; that is [`crate::dcap`]'s job.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! header (48 bytes)
//! v3, v4:  report body (SGX 384 bytes / TD 1.0 584 bytes)
//! v5:      body_type u16, body_size u32, body (body_size bytes)
//! signature_data_len u32
//! signature data (signature_data_len bytes)
//!   v3:     ECDSA signature, attestation key, QE report, QE report signature,
//!           QE auth data (u16 length + data), certification data (type u16, size u32, data)
//!   v4, v5: ECDSA signature, attestation key, certification data of type 6 (type u16, size u32)
//!           wrapping: QE report, QE report signature, QE auth data, certification data
//! anything after the signature data: tolerated and counted, never interpreted
//! ```

use crate::error::Error;
use crate::TeeKind;

/// Length of the quote header.
pub const HEADER_LEN: usize = 48;
/// Length of an SGX report body (also the QE report).
pub const SGX_REPORT_BODY_LEN: usize = 384;
/// Length of a TD report 1.0 body.
pub const TD_REPORT10_LEN: usize = 584;
/// Length of a TD report 1.5 body.
pub const TD_REPORT15_LEN: usize = 648;
/// Length of a TD report 1.5 "ex" body.
pub const TD_REPORT15_EX_LEN: usize = 885;

/// `attestation_key_type` of ECDSA-256 with P-256, the only one ward handles.
pub const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// `tee_type` of an SGX quote.
pub const TEE_TYPE_SGX: u32 = 0x00;
/// `tee_type` of a TDX quote.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Certification data type: PCK leaf, intermediate and root certificates, PEM, concatenated.
pub const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type: QE report certification data (the wrapper in v4/v5 quotes).
pub const CERT_DATA_QE_REPORT: u16 = 6;

/// v5 body descriptor types.
const BODY_SGX: u16 = 1;
const BODY_TD10: u16 = 2;
const BODY_TD15: u16 = 3;
const BODY_TD15_EX: u16 = 4;

/// The 48-byte header common to all quote versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    /// Quote format version: 3 (SGX), 4 or 5 (TDX).
    pub version: u16,
    /// Type of the attestation key: 2 (ECDSA-256 with P-256) is the only one accepted.
    pub attestation_key_type: u16,
    /// TEE type: 0x00 for SGX, 0x81 for TDX.
    pub tee_type: u32,
    /// SVN of the quoting enclave (v3; reserved and zero in TDX quotes).
    pub qe_svn: u16,
    /// SVN of the provisioning certification enclave (v3; reserved and zero in TDX quotes).
    pub pce_svn: u16,
    /// Vendor of the quoting enclave (Intel: `939a7233f79c4ca9940a0db3957f0607`).
    pub qe_vendor_id: [u8; 16],
    /// Custom data of the quoting enclave (for Intel's QE, the first 16 bytes are the platform's
    /// QE identity).
    pub user_data: [u8; 20],
}

/// An SGX enclave report body (384 bytes): the body of an SGX quote, and the QE report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgxReportBody {
    /// Security version of the CPU.
    pub cpu_svn: [u8; 16],
    /// Which extended SSA frame features the enclave uses.
    pub misc_select: u32,
    /// ATTRIBUTES: flags (first 8 bytes) and XFRM (last 8 bytes).
    pub attributes: [u8; 16],
    /// MRENCLAVE: hash of the enclave's code and initial data.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER: hash of the key that signed the enclave.
    pub mr_signer: [u8; 32],
    /// ISV product id.
    pub isv_prod_id: u16,
    /// ISV security version number.
    pub isv_svn: u16,
    /// Data the enclave bound into the report.
    pub report_data: [u8; 64],
}

impl SgxReportBody {
    /// The DEBUG attribute (bit 1 of the flags): a debugger can read the enclave's memory.
    pub fn debug(&self) -> bool {
        self.attributes[0] & 0x02 != 0
    }
}

/// The quoting enclave's report: an SGX report body.
pub type QeReport = SgxReportBody;

/// Which TD report layout a TDX quote carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TdBodyType {
    /// TD report 1.0 (584 bytes): every v4 quote, or a v5 quote with body type 2.
    Td10,
    /// TD report 1.5 (648 bytes): v5 body type 3.
    Td15,
    /// TD report 1.5 "ex" (885 bytes): v5 body type 4.
    Td15Ex,
}

impl TdBodyType {
    /// Length of the report body in bytes.
    pub fn byte_len(&self) -> usize {
        match self {
            TdBodyType::Td10 => TD_REPORT10_LEN,
            TdBodyType::Td15 => TD_REPORT15_LEN,
            TdBodyType::Td15Ex => TD_REPORT15_EX_LEN,
        }
    }
}

/// The fields a TD report 1.5 "ex" body (v5 body type 4) adds to a TD report 1.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport15Ex {
    /// VM index: 0 for an unpartitioned TD or the L1 VMM, 1-3 for TD VMs 1-3.
    pub vmid: u8,
    /// TD instance id: regenerated when the TD is relaunched.
    pub td_id: [u8; 32],
    /// Hash of the device information.
    pub dev_info: [u8; 48],
    /// SERVTD_HASH of the service TDs bound when the TD was created.
    pub init_service_td_hash: [u8; 48],
    /// Attributes of the service TD bound when the TD was created.
    pub init_service_td_attributes: [u8; 8],
    /// The TD's CPUSVN when it was created.
    pub init_cpu_svn: [u8; 16],
    /// The TD's TEE_TCB_SVN when it was created.
    pub init_tee_tcb_svn: [u8; 16],
    /// Model information of the platform `init_tee_tcb_svn` was captured on.
    pub init_tee_fmspc: [u8; 12],
    /// SERVTD_HASH of the currently bound service TDs.
    pub cur_service_td_hash: [u8; 48],
    /// Attributes of the currently bound service TD.
    pub cur_service_td_attributes: [u8; 8],
}

/// A TD report body (TDX quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReportBody {
    /// Which layout the quote carried.
    pub body_type: TdBodyType,
    /// TCB SVN of the TDX module.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: hash of the TDX module.
    pub mr_seam: [u8; 48],
    /// Hash of the TDX module's signer (zero for Intel's module).
    pub mr_signer_seam: [u8; 48],
    /// Attributes of the TDX module.
    pub seam_attributes: [u8; 8],
    /// TD attributes (DEBUG is bit 0; see [`TD_ATTRIBUTES_DEBUG_CLASS`]).
    pub td_attributes: [u8; 8],
    /// XFAM: extended features the TD may use.
    pub xfam: [u8; 8],
    /// MRTD: hash of the TD's initial contents.
    pub mr_td: [u8; 48],
    /// MRCONFIGID: software-defined configuration id.
    pub mr_config_id: [u8; 48],
    /// MROWNER: software-defined id of the TD's owner.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG: software-defined owner configuration.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..3: runtime-extended measurements.
    pub rtmr: [[u8; 48]; 4],
    /// Data the TD bound into the report.
    pub report_data: [u8; 64],
    /// Second TCB SVN of the TDX module (TD report 1.5 and later).
    pub tee_tcb_svn2: Option<[u8; 16]>,
    /// MR_SERVICETD: hash of the bound service TDs (TD report 1.5 and later; zero when none).
    pub mr_servicetd: Option<[u8; 48]>,
    /// The extra fields of a TD report 1.5 "ex" (v5 body type 4).
    pub td15_ex: Option<TdReport15Ex>,
}

/// The TD_ATTRIBUTES bits that make a TD observable by the host: the TUD group (bits 3:0, "TD
/// under debug", DEBUG is bit 0) and the TUP group (bits 15:4, "TD under profiling":
/// HGS_PLUS_PROF, PERF_PROF, PMT_PROF and reserved). Intel's TDX module ABI: a verifier that does
/// not know a bit decides by its group; in TDX 1.0 bits 7:1 were reserved TUD bits. The SEC
/// group (SEPT_VE_DISABLE, PKS, …) and OTHER group (PERFMON, …) are not debug-class.
pub const TD_ATTRIBUTES_DEBUG_CLASS: u64 = 0xffff;

/// The debug-class bits ([`TD_ATTRIBUTES_DEBUG_CLASS`]) set in `td_attributes`.
pub fn td_debug_class_bits(td_attributes: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*td_attributes) & TD_ATTRIBUTES_DEBUG_CLASS
}

impl TdReportBody {
    /// Whether any debug-class TD attribute is set (TUD bits 3:0 or TUP bits 15:4, see
    /// [`TD_ATTRIBUTES_DEBUG_CLASS`]): the host can read, change or profile the TD.
    pub fn debug(&self) -> bool {
        td_debug_class_bits(&self.td_attributes) != 0
    }
}

/// The report body of a quote.
// Inline rather than boxed: a quote is parsed once and the bodies are only ~0.4 and ~0.9 KiB.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteBody {
    /// An SGX enclave report.
    Sgx(SgxReportBody),
    /// A TD report.
    Td(TdReportBody),
}

impl QuoteBody {
    /// The SGX report, if this is one.
    pub fn as_sgx(&self) -> Option<&SgxReportBody> {
        match self {
            QuoteBody::Sgx(b) => Some(b),
            QuoteBody::Td(_) => None,
        }
    }

    /// The TD report, if this is one.
    pub fn as_td(&self) -> Option<&TdReportBody> {
        match self {
            QuoteBody::Td(b) => Some(b),
            QuoteBody::Sgx(_) => None,
        }
    }
}

/// The quote's signature data: the quoting enclave's signature and what certifies its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureData {
    /// ECDSA P-256 signature (r || s) over header and body, by the attestation key.
    pub signature: [u8; 64],
    /// The attestation key (uncompressed P-256 point, x || y).
    pub attestation_key: [u8; 64],
    /// The quoting enclave's report; its report data binds the attestation key and auth data.
    pub qe_report: QeReport,
    /// ECDSA P-256 signature (r || s) over the QE report, by the PCK.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data.
    pub qe_auth_data: Vec<u8>,
    /// Type of the certification data (innermost one in v4/v5 quotes); 5 is the PCK chain.
    pub cert_data_type: u16,
    /// The certification data; for type 5, the PEM certificate chain (possibly NUL-terminated).
    pub cert_data: Vec<u8>,
}

/// A parsed DCAP quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The header.
    pub header: QuoteHeader,
    /// The report body.
    pub body: QuoteBody,
    /// The signature data.
    pub signature_data: SignatureData,
    /// Bytes from the header to the end of the signature data.
    signed_len: usize,
    /// Bytes in the input, trailing bytes included.
    total_len: usize,
}

impl Quote {
    /// Parses a quote. Bytes after the end of the signature data are tolerated and counted (see
    /// [`Quote::trailing_bytes`]); anything else that is not a well-formed SGX v3 or TDX v4/v5
    /// ECDSA-P256 quote is refused with the field and offset that were wrong. Never panics.
    pub fn parse(bytes: &[u8]) -> crate::Result<Quote> {
        let mut r = Reader::new(bytes, "DCAP quote");
        let header = parse_header(&mut r)?;
        let body = match header.version {
            3 => {
                r.what = "SGX quote v3";
                QuoteBody::Sgx(parse_sgx_body(&mut r)?)
            }
            4 => {
                r.what = "TDX quote v4";
                QuoteBody::Td(parse_td_body(&mut r, TdBodyType::Td10)?)
            }
            _ => parse_v5_body(&mut r, &header)?,
        };
        let sig_len_at = r.pos;
        let sig_len = r.len_u32("signature_data_len")?;
        let mut sig = r.sub(sig_len, "signature_data_len", sig_len_at)?;
        let signature_data = if header.version == 3 {
            parse_signature_data_v3(&mut sig)?
        } else {
            parse_signature_data_v4(&mut sig)?
        };
        sig.finish("signature_data", "the signature data", sig_len_at)?;
        Ok(Quote {
            header,
            body,
            signature_data,
            signed_len: r.pos,
            total_len: bytes.len(),
        })
    }

    /// The kind of TEE that produced the quote.
    pub fn tee(&self) -> TeeKind {
        match self.body {
            QuoteBody::Sgx(_) => TeeKind::Sgx,
            QuoteBody::Td(_) => TeeKind::Tdx,
        }
    }

    /// The 64 bytes of report data the enclave or TD bound into the quote.
    pub fn report_data(&self) -> &[u8; 64] {
        match &self.body {
            QuoteBody::Sgx(b) => &b.report_data,
            QuoteBody::Td(b) => &b.report_data,
        }
    }

    /// How many bytes of the input followed the end of the signature data.
    pub fn trailing_bytes(&self) -> usize {
        self.total_len.saturating_sub(self.signed_len)
    }

    /// Length of the quote proper: from the header to the end of the signature data (trailing
    /// bytes excluded). A quote is never empty.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.signed_len
    }

    /// The PCK certificate chain (certification data type 5) as PEM text, without the NUL
    /// terminator some quoting enclaves append. None for other certification data types or if
    /// the data is not UTF-8.
    pub fn pck_chain_pem(&self) -> Option<&str> {
        if self.signature_data.cert_data_type != CERT_DATA_PCK_CHAIN {
            return None;
        }
        let pem = std::str::from_utf8(&self.signature_data.cert_data).ok()?;
        Some(pem.trim_end_matches('\0'))
    }
}

fn parse_header(r: &mut Reader<'_>) -> crate::Result<QuoteHeader> {
    let version = r.u16("version")?;
    if !(3..=5).contains(&version) {
        return Err(Error::Unsupported(format!(
            "DCAP quote version {version} (field `version` at offset 0); ward handles 3 (SGX), 4 and 5 (TDX)"
        )));
    }
    let attestation_key_type = r.u16("attestation_key_type")?;
    if attestation_key_type != ATTESTATION_KEY_ECDSA_P256 {
        return Err(Error::Unsupported(format!(
            "attestation key type {attestation_key_type} (field `attestation_key_type` at offset 2); ward handles only 2 (ECDSA-256 with P-256)"
        )));
    }
    let tee_type = r.u32("tee_type")?;
    match (version, tee_type) {
        (3, TEE_TYPE_SGX) | (4 | 5, TEE_TYPE_TDX) | (5, TEE_TYPE_SGX) => {}
        (3, TEE_TYPE_TDX) => return Err(r.malformed("tee_type", 4, "0x81 (TDX) in a version 3 quote, which can only carry an SGX report".into())),
        (4, TEE_TYPE_SGX) => {
            return Err(Error::Unsupported(
                "SGX quote version 4 (field `tee_type` at offset 4 is 0x00 in a version 4 quote); ward handles SGX quotes of version 3".into(),
            ))
        }
        (_, other) => {
            return Err(Error::Unsupported(format!(
                "TEE type {other:#x} (field `tee_type` at offset 4); ward handles 0x0 (SGX) and 0x81 (TDX)"
            )))
        }
    }
    Ok(QuoteHeader {
        version,
        attestation_key_type,
        tee_type,
        qe_svn: r.u16("qe_svn")?,
        pce_svn: r.u16("pce_svn")?,
        qe_vendor_id: r.array("qe_vendor_id")?,
        user_data: r.array("user_data")?,
    })
}

fn parse_v5_body(r: &mut Reader<'_>, header: &QuoteHeader) -> crate::Result<QuoteBody> {
    let type_at = r.pos;
    let body_type = r.u16("body_type")?;
    let size_at = r.pos;
    let body_size = r.u32("body_size")?;
    let (name, expected_len, expected_tee) = match body_type {
        BODY_SGX => ("SGX report", SGX_REPORT_BODY_LEN, TEE_TYPE_SGX),
        BODY_TD10 => ("TD report 1.0", TD_REPORT10_LEN, TEE_TYPE_TDX),
        BODY_TD15 => ("TD report 1.5", TD_REPORT15_LEN, TEE_TYPE_TDX),
        BODY_TD15_EX => ("TD report 1.5 ex", TD_REPORT15_EX_LEN, TEE_TYPE_TDX),
        other => {
            return Err(Error::Unsupported(format!(
                "quote v5 body type {other} (field `body_type` at offset {type_at}); ward handles 1 (SGX report), 2 (TD report 1.0), 3 (TD report 1.5) and 4 (TD report 1.5 ex)"
            )))
        }
    };
    r.what = if expected_tee == TEE_TYPE_SGX {
        "SGX quote v5"
    } else {
        "TDX quote v5"
    };
    if header.tee_type != expected_tee {
        return Err(r.malformed(
            "body_type",
            type_at,
            format!(
                "body type {body_type} ({name}) in a quote whose tee_type is {:#x}",
                header.tee_type
            ),
        ));
    }
    if u32::try_from(expected_len).ok() != Some(body_size) {
        return Err(r.malformed(
            "body_size",
            size_at,
            format!(
                "says {body_size} bytes but a body of type {body_type} ({name}) is {expected_len}"
            ),
        ));
    }
    let mut body = r.sub(expected_len, "body_size", size_at)?;
    let parsed = match body_type {
        BODY_SGX => QuoteBody::Sgx(parse_sgx_body(&mut body)?),
        BODY_TD10 => QuoteBody::Td(parse_td_body(&mut body, TdBodyType::Td10)?),
        BODY_TD15 => QuoteBody::Td(parse_td_body(&mut body, TdBodyType::Td15)?),
        _ => QuoteBody::Td(parse_td_body(&mut body, TdBodyType::Td15Ex)?),
    };
    body.finish("body", "the report body", size_at)?;
    Ok(parsed)
}

/// Parses a 384-byte SGX report body starting at the reader's position.
fn parse_sgx_body(r: &mut Reader<'_>) -> crate::Result<SgxReportBody> {
    parse_sgx_report(r, "report_body")
}

fn parse_sgx_report(r: &mut Reader<'_>, field: &'static str) -> crate::Result<SgxReportBody> {
    // One bounds check for the whole report, so truncation names the report rather than some
    // field inside it; then the fields themselves.
    let start = r.pos;
    let mut b = r
        .sub(SGX_REPORT_BODY_LEN, field, start)
        .map_err(|_| r.short(field, start, SGX_REPORT_BODY_LEN))?;
    let cpu_svn = b.array("cpu_svn")?;
    let misc_select = b.u32("misc_select")?;
    b.skip(28, "reserved1")?;
    let attributes = b.array("attributes")?;
    let mr_enclave = b.array("mr_enclave")?;
    b.skip(32, "reserved2")?;
    let mr_signer = b.array("mr_signer")?;
    b.skip(96, "reserved3")?;
    let isv_prod_id = b.u16("isv_prod_id")?;
    let isv_svn = b.u16("isv_svn")?;
    b.skip(60, "reserved4")?;
    let report_data = b.array("report_data")?;
    b.finish(field, "the SGX report", start)?;
    Ok(SgxReportBody {
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
    })
}

/// Parses a TD report body of the given layout starting at the reader's position.
fn parse_td_body(r: &mut Reader<'_>, body_type: TdBodyType) -> crate::Result<TdReportBody> {
    let start = r.pos;
    let mut b = r
        .sub(body_type.byte_len(), "report_body", start)
        .map_err(|_| r.short("report_body", start, body_type.byte_len()))?;
    let tee_tcb_svn = b.array("tee_tcb_svn")?;
    let mr_seam = b.array("mr_seam")?;
    let mr_signer_seam = b.array("mr_signer_seam")?;
    let seam_attributes = b.array("seam_attributes")?;
    let td_attributes = b.array("td_attributes")?;
    let xfam = b.array("xfam")?;
    let mr_td = b.array("mr_td")?;
    let mr_config_id = b.array("mr_config_id")?;
    let mr_owner = b.array("mr_owner")?;
    let mr_owner_config = b.array("mr_owner_config")?;
    let rtmr = [
        b.array("rtmr0")?,
        b.array("rtmr1")?,
        b.array("rtmr2")?,
        b.array("rtmr3")?,
    ];
    let report_data = b.array("report_data")?;
    let (tee_tcb_svn2, mr_servicetd) = match body_type {
        TdBodyType::Td10 => (None, None),
        TdBodyType::Td15 | TdBodyType::Td15Ex => (
            Some(b.array("tee_tcb_svn2")?),
            Some(b.array("mr_servicetd")?),
        ),
    };
    let td15_ex = match body_type {
        TdBodyType::Td15Ex => Some(TdReport15Ex {
            vmid: b.u8("vmid")?,
            td_id: b.array("td_id")?,
            dev_info: b.array("dev_info")?,
            init_service_td_hash: b.array("init_service_td_hash")?,
            init_service_td_attributes: b.array("init_service_td_attributes")?,
            init_cpu_svn: b.array("init_cpu_svn")?,
            init_tee_tcb_svn: b.array("init_tee_tcb_svn")?,
            init_tee_fmspc: b.array("init_tee_fmspc")?,
            cur_service_td_hash: b.array("cur_service_td_hash")?,
            cur_service_td_attributes: b.array("cur_service_td_attributes")?,
        }),
        _ => None,
    };
    b.finish("report_body", "the TD report", start)?;
    Ok(TdReportBody {
        body_type,
        tee_tcb_svn,
        mr_seam,
        mr_signer_seam,
        seam_attributes,
        td_attributes,
        xfam,
        mr_td,
        mr_config_id,
        mr_owner,
        mr_owner_config,
        rtmr,
        report_data,
        tee_tcb_svn2,
        mr_servicetd,
        td15_ex,
    })
}

/// The part shared by v3 signature data and v4/v5 QE report certification data: QE report, its
/// signature, QE auth data and the certification data.
struct QeCertified {
    qe_report: QeReport,
    qe_report_signature: [u8; 64],
    qe_auth_data: Vec<u8>,
    cert_data_type: u16,
    cert_data: Vec<u8>,
}

fn parse_qe_certified(r: &mut Reader<'_>) -> crate::Result<QeCertified> {
    let qe_report = parse_sgx_report(r, "qe_report")?;
    let qe_report_signature = r.array("qe_report_signature")?;
    let auth_len_at = r.pos;
    let auth_len = r.u16("qe_auth_data_len")?;
    let qe_auth_data = r
        .sub(usize::from(auth_len), "qe_auth_data_len", auth_len_at)?
        .rest()
        .to_vec();
    let cert_data_type = r.u16("cert_data_type")?;
    let size_at = r.pos;
    let size = r.len_u32("cert_data_size")?;
    let cert_data = r.sub(size, "cert_data_size", size_at)?.rest().to_vec();
    Ok(QeCertified {
        qe_report,
        qe_report_signature,
        qe_auth_data,
        cert_data_type,
        cert_data,
    })
}

fn parse_signature_data_v3(r: &mut Reader<'_>) -> crate::Result<SignatureData> {
    let signature = r.array("ecdsa_signature")?;
    let attestation_key = r.array("attestation_key")?;
    let q = parse_qe_certified(r)?;
    Ok(SignatureData {
        signature,
        attestation_key,
        qe_report: q.qe_report,
        qe_report_signature: q.qe_report_signature,
        qe_auth_data: q.qe_auth_data,
        cert_data_type: q.cert_data_type,
        cert_data: q.cert_data,
    })
}

fn parse_signature_data_v4(r: &mut Reader<'_>) -> crate::Result<SignatureData> {
    let signature = r.array("ecdsa_signature")?;
    let attestation_key = r.array("attestation_key")?;
    let type_at = r.pos;
    let outer_type = r.u16("outer_cert_data_type")?;
    if outer_type != CERT_DATA_QE_REPORT {
        return Err(Error::Unsupported(format!(
            "{}: certification data type {outer_type} (field `outer_cert_data_type` at offset {type_at}); ward handles only 6 (QE report certification data)",
            r.what
        )));
    }
    let size_at = r.pos;
    let size = r.len_u32("outer_cert_data_size")?;
    let mut inner = r.sub(size, "outer_cert_data_size", size_at)?;
    let q = parse_qe_certified(&mut inner)?;
    inner.finish(
        "outer_cert_data",
        "the QE report certification data",
        size_at,
    )?;
    Ok(SignatureData {
        signature,
        attestation_key,
        qe_report: q.qe_report,
        qe_report_signature: q.qe_report_signature,
        qe_auth_data: q.qe_auth_data,
        cert_data_type: q.cert_data_type,
        cert_data: q.cert_data,
    })
}

/// A bounds-checked little-endian reader over `buf[pos..end]` that reports absolute offsets.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            what,
        }
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn malformed(&self, field: &'static str, offset: usize, problem: String) -> Error {
        Error::Malformed {
            what: self.what,
            field,
            offset,
            problem,
        }
    }

    fn short(&self, field: &'static str, offset: usize, n: usize) -> Error {
        let remaining = self.end.saturating_sub(offset);
        self.malformed(
            field,
            offset,
            format!("needs {n} bytes but only {remaining} remain"),
        )
    }

    /// Takes the next `n` bytes.
    fn take(&mut self, n: usize, field: &'static str) -> crate::Result<&'a [u8]> {
        let start = self.pos;
        let stop = start.checked_add(n).filter(|&stop| stop <= self.end);
        let slice = stop
            .and_then(|stop| self.buf.get(start..stop))
            .ok_or_else(|| self.short(field, start, n))?;
        self.pos = stop.unwrap_or(self.end);
        Ok(slice)
    }

    fn skip(&mut self, n: usize, field: &'static str) -> crate::Result<()> {
        self.take(n, field).map(|_| ())
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> crate::Result<[u8; N]> {
        let at = self.pos;
        let slice = self.take(N, field)?;
        <[u8; N]>::try_from(slice).map_err(|_| self.short(field, at, N))
    }

    fn u8(&mut self, field: &'static str) -> crate::Result<u8> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    fn u16(&mut self, field: &'static str) -> crate::Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> crate::Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Reads a u32 length as a usize.
    fn len_u32(&mut self, field: &'static str) -> crate::Result<usize> {
        let at = self.pos;
        let n = self.u32(field)?;
        usize::try_from(n).map_err(|_| {
            self.malformed(
                field,
                at,
                format!("{n} does not fit in this platform's address space"),
            )
        })
    }

    /// Splits off the next `n` bytes as a reader of their own. `len_field` at `len_at` is the field
    /// that gave the length, and is what an error names.
    fn sub(
        &mut self,
        n: usize,
        len_field: &'static str,
        len_at: usize,
    ) -> crate::Result<Reader<'a>> {
        let start = self.pos;
        let remaining = self.remaining();
        let stop = start
            .checked_add(n)
            .filter(|&stop| stop <= self.end)
            .ok_or_else(|| {
                self.malformed(
                    len_field,
                    len_at,
                    format!("says {n} bytes but only {remaining} remain"),
                )
            })?;
        self.pos = stop;
        Ok(Reader {
            buf: self.buf,
            pos: start,
            end: stop,
            what: self.what,
        })
    }

    /// Everything left, consuming it.
    fn rest(&mut self) -> &'a [u8] {
        let slice = self.buf.get(self.pos..self.end).unwrap_or(&[]);
        self.pos = self.end;
        slice
    }

    /// Refuses bytes left over inside a length-delimited structure.
    fn finish(self, field: &'static str, container: &str, len_at: usize) -> crate::Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.malformed(
                field,
                self.pos,
                format!("{n} unexpected bytes after the end of {container} (whose length is given at offset {len_at})"),
            )),
        }
    }
}
