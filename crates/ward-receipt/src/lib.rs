//! Signed run receipts: what binds a run's results to the run.
//!
//! A protected file proves only that someone holding its key wrote it. When the key belongs to
//! one workload, that is the workload — but *which run* of it? A host that keeps an older
//! `result.txt` (or one from a run on other inputs) can put it back, and it decrypts and verifies
//! perfectly. A receipt closes that gap: at the end of a successful run, the workload signs, with
//! the key of its attested RA-TLS certificate,
//!
//! - the workload's identity (the signed manifest's measurement, signer, product id and SVN),
//! - the run ids the provisioning servers issued when they released this run's keys (each the id
//!   of the server's audit record for the grant), and
//! - for each protected file the run committed, its path and the SHA-256 of its metadata node
//!   (the file's first 4096 bytes, which commit to the whole content through the Merkle tree).
//!
//! The owner checks the receipt ([`Receipt::verify`]: the certificate's evidence against her
//! policy, the workload it names against the statement, the signature) and then the file she is
//! about to decrypt against it ([`VerifiedReceipt::output_for`]) and the run id her own server's
//! audit log shows ([`VerifiedReceipt::require_run`]). A substituted or rolled-back file has
//! another metadata node; an older receipt names another run.
//!
//! What this is not: it says nothing about plaintext files the workload wrote (they are not
//! protected at all), and it cannot stop a host from withholding results — only from passing off
//! others as this run's.
//!
//! The format ([`FORMAT`]) is a JSON object; the signed statement is carried as the exact string
//! that was signed, so no canonicalisation is needed to check it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Read;
use ward_attest::{EvidenceVerifier, Policy, VerifiedClaims, WorkloadIdentity};
use ward_ratls::{RaTlsError, RaTlsIdentity};

/// The `format` of a receipt this crate writes and reads.
pub const FORMAT: &str = "ward-receipt/1";

/// What the workload's key signs: this context string, then the statement's exact bytes. The
/// context keeps a receipt signature from ever being taken for a signature made for another use
/// of the same key (a TLS handshake signs other contexts).
pub const SIGNING_CONTEXT: &[u8] = b"ward receipt v1\0";

/// The largest receipt read, in bytes: a DCAP quote is ~5 KB (10 KB as hex), each output ~150 B.
pub const MAX_RECEIPT_LEN: usize = 4 << 20;

/// The most outputs one receipt names.
pub const MAX_OUTPUTS: usize = 20_000;

/// The most runs (one per provisioning server contacted) one receipt names.
pub const MAX_RUNS: usize = 64;

/// The size of a protected file's metadata node (its first bytes), what [`metadata_digest`]
/// hashes.
pub const METADATA_NODE_LEN: usize = 4096;

/// Why a receipt could not be made, read, or accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Larger than [`MAX_RECEIPT_LEN`].
    #[error("the receipt is {len} bytes; a receipt is at most {MAX_RECEIPT_LEN} bytes")]
    TooLarge {
        /// Its length.
        len: u64,
    },
    /// Not JSON of the receipt's shape (serde_json's error says where).
    #[error("not a ward receipt: {0}")]
    Malformed(#[source] serde_json::Error),
    /// Another format, or another version of this one.
    #[error("the receipt's format is {found:?}; this ward reads {FORMAT:?}")]
    Format {
        /// The format the receipt names.
        found: String,
    },
    /// A field has the right type but an impossible value.
    #[error("the receipt's {field} is invalid: {problem}")]
    Field {
        /// Which field (e.g. `statement.outputs[3].metadata_sha256`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The certificate's evidence is invalid, not bound to its key, or refused by the policy.
    #[error("the receipt's certificate was not accepted")]
    Certificate(#[source] RaTlsError),
    /// The certificate's evidence names no ward workload, so it cannot vouch for a ward run.
    #[error(
        "the receipt's certificate carries evidence that names no ward workload (not made by \
         ward's runtime), so it cannot vouch for a run"
    )]
    NoWorkload,
    /// The statement names another workload than the evidence.
    #[error(
        "the receipt's statement names workload {stated}, but its attested certificate names \
         {attested}: the statement was not made by that workload"
    )]
    WorkloadMismatch {
        /// The statement's workload.
        stated: Box<WorkloadSummary>,
        /// The evidence's workload.
        attested: Box<WorkloadSummary>,
    },
    /// The signature is not the certificate key's over the statement.
    #[error("the receipt's signature does not verify: the statement was changed after signing")]
    Signature(#[source] RaTlsError),
    /// The receipt is not for the run the owner expected.
    #[error(
        "the receipt is for run(s) {found}, not run {wanted}: these results come from another \
         run of the workload (an older one, or one on other inputs)"
    )]
    OtherRun {
        /// The run id wanted.
        wanted: String,
        /// The run ids the receipt names (or "none").
        found: String,
    },
    /// Signing failed.
    #[error("signing the receipt")]
    Signing(#[source] RaTlsError),
    /// Reading a file to check against the receipt failed.
    #[error("reading {what}")]
    Io {
        /// What was being read.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A workload's identity for messages: measurement and signer, shortened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadSummary(pub WorkloadIdentity);

impl fmt::Display for WorkloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.0;
        write!(
            f,
            "measurement {} signer {} isv_prod_id {} isv_svn {}{}",
            hex::encode(w.measurement),
            hex::encode(w.signer),
            w.isv_prod_id,
            w.isv_svn,
            if w.debug { " (debug)" } else { "" }
        )
    }
}

/// One provisioning server's grant for the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The server, `host:port` as the manifest names it.
    pub server: String,
    /// The run id it issued (the id of its audit record for the grant).
    pub run_id: String,
}

/// A protected file the run committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its path in the workload's view.
    pub path: String,
    /// SHA-256 of its metadata node as written ([`metadata_digest`]).
    pub metadata_sha256: [u8; 32],
}

/// What a receipt states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The workload that ran (the verified signed manifest's identity).
    pub workload: WorkloadIdentity,
    /// The provisioning servers' grants for this run, in the order they were made.
    pub runs: Vec<Run>,
    /// The protected files committed, each path once (its last version).
    pub outputs: Vec<Output>,
    /// When the receipt was signed (unix seconds, the workload's clock: informative).
    pub issued_at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireReceipt {
    format: String,
    statement: String,
    signature: String,
    certificate: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireStatement {
    workload: WireWorkload,
    runs: Vec<Run>,
    outputs: Vec<WireOutput>,
    issued_at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireWorkload {
    measurement: String,
    signer: String,
    isv_prod_id: u16,
    isv_svn: u16,
    debug: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOutput {
    path: String,
    metadata_sha256: String,
}

impl Statement {
    fn to_wire(&self) -> WireStatement {
        let w = &self.workload;
        WireStatement {
            workload: WireWorkload {
                measurement: hex::encode(w.measurement),
                signer: hex::encode(w.signer),
                isv_prod_id: w.isv_prod_id,
                isv_svn: w.isv_svn,
                debug: w.debug,
            },
            runs: self.runs.clone(),
            outputs: self
                .outputs
                .iter()
                .map(|o| WireOutput {
                    path: o.path.clone(),
                    metadata_sha256: hex::encode(o.metadata_sha256),
                })
                .collect(),
            issued_at: self.issued_at,
        }
    }

    fn from_wire(w: WireStatement) -> Result<Statement, ReceiptError> {
        let field = |field: String, problem: &str| ReceiptError::Field {
            field,
            problem: problem.to_owned(),
        };
        if w.runs.len() > MAX_RUNS {
            return Err(field(
                "statement.runs".into(),
                &format!("{} runs; at most {MAX_RUNS}", w.runs.len()),
            ));
        }
        if w.outputs.len() > MAX_OUTPUTS {
            return Err(field(
                "statement.outputs".into(),
                &format!("{} outputs; at most {MAX_OUTPUTS}", w.outputs.len()),
            ));
        }
        for (i, r) in w.runs.iter().enumerate() {
            if r.run_id.is_empty() || r.run_id.len() > 64 || !r.run_id.is_ascii() {
                return Err(field(
                    format!("statement.runs[{i}].run_id"),
                    "not 1 to 64 ASCII characters",
                ));
            }
            if r.server.is_empty() || r.server.len() > 512 {
                return Err(field(
                    format!("statement.runs[{i}].server"),
                    "not 1 to 512 characters",
                ));
            }
        }
        let mut outputs = Vec::with_capacity(w.outputs.len());
        for (i, o) in w.outputs.into_iter().enumerate() {
            if o.path.is_empty() || o.path.len() > 4096 {
                return Err(field(
                    format!("statement.outputs[{i}].path"),
                    "not 1 to 4096 bytes",
                ));
            }
            let metadata_sha256 = hex32(&o.metadata_sha256)
                .ok_or_else(|| field(format!("statement.outputs[{i}].metadata_sha256"), HEX32))?;
            outputs.push(Output {
                path: o.path,
                metadata_sha256,
            });
        }
        let workload = WorkloadIdentity {
            measurement: hex32(&w.workload.measurement)
                .ok_or_else(|| field("statement.workload.measurement".into(), HEX32))?,
            signer: hex32(&w.workload.signer)
                .ok_or_else(|| field("statement.workload.signer".into(), HEX32))?,
            isv_prod_id: w.workload.isv_prod_id,
            isv_svn: w.workload.isv_svn,
            debug: w.workload.debug,
        };
        Ok(Statement {
            workload,
            runs: w.runs,
            outputs,
            issued_at: w.issued_at,
        })
    }
}

const HEX32: &str = "not 64 hex digits";

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// A run receipt, as read or made; nothing about it is trusted until [`Receipt::verify`].
#[derive(Clone)]
pub struct Receipt {
    statement: Statement,
    /// The exact statement bytes signed.
    statement_json: String,
    signature: Vec<u8>,
    certificate: Vec<u8>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("statement", &self.statement)
            .field(
                "certificate",
                &format_args!("<{} bytes>", self.certificate.len()),
            )
            .finish()
    }
}

impl Receipt {
    /// Signs `statement` with `identity`, the workload's attested RA-TLS key.
    pub fn sign(statement: Statement, identity: &RaTlsIdentity) -> Result<Receipt, ReceiptError> {
        let statement_json =
            serde_json::to_string(&statement.to_wire()).map_err(ReceiptError::Malformed)?;
        let signature = identity
            .sign(&signed_bytes(&statement_json))
            .map_err(ReceiptError::Signing)?;
        Ok(Receipt {
            statement,
            statement_json,
            signature,
            certificate: identity.cert_der().to_vec(),
        })
    }

    /// The receipt as JSON (what `ward run --receipt` writes).
    pub fn to_json(&self) -> String {
        let wire = WireReceipt {
            format: FORMAT.to_owned(),
            statement: self.statement_json.clone(),
            signature: hex::encode(&self.signature),
            certificate: hex::encode(&self.certificate),
        };
        // A struct of strings always serialises.
        let mut s = serde_json::to_string_pretty(&wire).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads a receipt strictly: bounded, exact shape, no unknown fields. Unverified.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_LEN {
            return Err(ReceiptError::TooLarge {
                len: bytes.len() as u64,
            });
        }
        let wire: WireReceipt = serde_json::from_slice(bytes).map_err(ReceiptError::Malformed)?;
        if wire.format != FORMAT {
            return Err(ReceiptError::Format {
                found: wire.format.chars().take(64).collect(),
            });
        }
        let statement: WireStatement =
            serde_json::from_str(&wire.statement).map_err(ReceiptError::Malformed)?;
        let statement = Statement::from_wire(statement)?;
        let bytes_field = |name: &str, v: &str| {
            hex::decode(v).map_err(|e| ReceiptError::Field {
                field: name.to_owned(),
                problem: format!("not hex: {e}"),
            })
        };
        Ok(Receipt {
            statement,
            statement_json: wire.statement.clone(),
            signature: bytes_field("signature", &wire.signature)?,
            certificate: bytes_field("certificate", &wire.certificate)?,
        })
    }

    /// Reads a receipt from `reader`, at most [`MAX_RECEIPT_LEN`] bytes.
    pub fn read_from(reader: impl Read, what: &str) -> Result<Receipt, ReceiptError> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_RECEIPT_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ReceiptError::Io {
                what: what.to_owned(),
                source,
            })?;
        Receipt::parse(&bytes)
    }

    /// What the receipt claims, unverified.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The certificate (DER) whose key signed.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Verifies the receipt: the certificate's evidence with `verifier` and its key binding,
    /// `policy` on what it proves, the workload it names against the statement's, and the
    /// signature over the statement.
    ///
    /// The policy is the owner's: one that pins the workload (`ward sign` prints it) makes the
    /// receipt prove that *that* workload committed these outputs.
    pub fn verify(
        &self,
        verifier: &dyn EvidenceVerifier,
        policy: &Policy,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        let cert =
            ward_ratls::parse_certificate(&self.certificate).map_err(ReceiptError::Certificate)?;
        cert.verify_signature(&signed_bytes(&self.statement_json), &self.signature)
            .map_err(ReceiptError::Signature)?;
        let claims = ward_ratls::verify_certificate(&self.certificate, verifier, policy)
            .map_err(ReceiptError::Certificate)?;
        let attested = claims.workload.ok_or(ReceiptError::NoWorkload)?;
        if attested != self.statement.workload {
            return Err(ReceiptError::WorkloadMismatch {
                stated: Box::new(WorkloadSummary(self.statement.workload)),
                attested: Box::new(WorkloadSummary(attested)),
            });
        }
        Ok(VerifiedReceipt {
            statement: self.statement.clone(),
            claims,
        })
    }
}

fn signed_bytes(statement_json: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + statement_json.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(statement_json.as_bytes());
    m
}

/// A receipt whose evidence, policy, workload and signature were checked.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    statement: Statement,
    claims: VerifiedClaims,
}

impl VerifiedReceipt {
    /// What the workload signed.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// What the certificate's evidence proved.
    pub fn claims(&self) -> &VerifiedClaims {
        &self.claims
    }

    /// The output whose metadata node hashes to `metadata_sha256`, if this run committed it.
    pub fn output_for(&self, metadata_sha256: &[u8; 32]) -> Option<&Output> {
        self.statement
            .outputs
            .iter()
            .find(|o| &o.metadata_sha256 == metadata_sha256)
    }

    /// Checks that the receipt is for the run `run_id` (as the owner's provisioning server's
    /// audit log names its grant).
    pub fn require_run(&self, run_id: &str) -> Result<&Run, ReceiptError> {
        self.statement
            .runs
            .iter()
            .find(|r| r.run_id.eq_ignore_ascii_case(run_id))
            .ok_or_else(|| ReceiptError::OtherRun {
                wanted: run_id.chars().take(64).collect(),
                found: if self.statement.runs.is_empty() {
                    "none (its keys came from no provisioning server)".into()
                } else {
                    self.statement
                        .runs
                        .iter()
                        .map(|r| format!("{} from {}", r.run_id, r.server))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }
}

/// SHA-256 of a protected file's metadata node: its first [`METADATA_NODE_LEN`] bytes. A file
/// shorter than that is no protected file, and gets an `UnexpectedEof` error.
pub fn metadata_digest(mut file: impl Read) -> std::io::Result<[u8; 32]> {
    let mut node = vec![0u8; METADATA_NODE_LEN];
    file.read_exact(&mut node)?;
    Ok(Sha256::digest(&node).into())
}
