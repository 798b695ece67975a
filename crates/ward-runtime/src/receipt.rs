//! Signing the run's receipt ([`ward_receipt`]) at the end of a successful run.

use crate::bootstrap::{BootError, Context};
use crate::vfs::CommittedOutput;
use std::sync::Arc;
use ward_attest::WorkloadIdentity;
use ward_ratls::RaTlsIdentity;
use ward_receipt::{Output, Receipt, ReceiptError, Run, Statement};

/// What signs a run's receipt: the workload's attested key, its identity and its run ids,
/// taken from the [`Context`] before the workload runs so a receipt that cannot be made is
/// known before anything is written.
pub struct ReceiptSigner {
    identity: Arc<RaTlsIdentity>,
    workload: WorkloadIdentity,
    runs: Vec<Run>,
}

impl ReceiptSigner {
    /// The signer for `ctx`: the identity the provisioning servers saw or, when the run
    /// contacted none (development keys), a fresh one from the run's attester naming the same
    /// workload. Fails when there is no attester to vouch for the key.
    pub fn for_context(ctx: &Context) -> Result<ReceiptSigner, BootError> {
        let workload = ctx.manifest.workload();
        let identity = match (&ctx.identity, &ctx.attester) {
            (Some(identity), _) => identity.clone(),
            (None, Some(attester)) => Arc::new(
                RaTlsIdentity::generate_for_workload(attester.as_ref(), &workload)
                    .map_err(|e| BootError::Attest(Box::new(e)))?,
            ),
            (None, None) => {
                return Err(BootError::Attest(
                    "a receipt is signed by the workload's attested key, and this run has no \
                     attester to make one (for the simulated TEE, give its platform key with \
                     --sim-key)"
                        .into(),
                ))
            }
        };
        Ok(ReceiptSigner {
            identity,
            workload,
            runs: ctx.runs.clone(),
        })
    }

    /// The receipt for `committed` (in commit order; a path committed more than once is named
    /// once, with its last version), signed at `issued_at` (unix seconds).
    pub fn sign(
        &self,
        committed: &[CommittedOutput],
        issued_at: u64,
    ) -> Result<Receipt, ReceiptError> {
        let mut seen = std::collections::HashSet::new();
        let mut outputs: Vec<Output> = committed
            .iter()
            .rev()
            .filter(|c| seen.insert(c.path.as_str()))
            .map(|c| Output {
                path: c.path.clone(),
                metadata_sha256: c.metadata_sha256,
            })
            .collect();
        outputs.reverse();
        Receipt::sign(
            Statement {
                workload: self.workload,
                runs: self.runs.clone(),
                outputs,
                issued_at,
            },
            &self.identity,
        )
    }
}
