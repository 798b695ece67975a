//! Policies accept what they name and refuse everything else with the rule, the evidence's
//! value and the expected one.

use ward_attest::claims::{SgxIdentity, TdxIdentity};
use ward_attest::{Policy, TcbStatus, TeeKind, VerifiedClaims};

const MRE: &str = "8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68";
const MRS: &str = "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e";
const SIMKEY: &str = "02aa00000000000000000000000000000000000000000000000000000000000000";

fn arr<const N: usize>(h: &str) -> [u8; N] {
    let mut a = [0u8; N];
    hex::decode_to_slice(h, &mut a).unwrap();
    a
}

fn sgx(status: TcbStatus, advisories: &[&str]) -> VerifiedClaims {
    VerifiedClaims {
        tee: TeeKind::Sgx,
        sgx: Some(SgxIdentity {
            mr_enclave: arr(MRE),
            mr_signer: arr(MRS),
            isv_prod_id: 1,
            isv_svn: 3,
            attributes: arr("0500000000000000e700000000000000"),
            debug: false,
        }),
        tdx: None,
        report_data: [0; 64],
        tcb_status: Some(status),
        advisory_ids: advisories.iter().map(|s| s.to_string()).collect(),
        fmspc: Some([0, 0x60, 0x6a, 0, 0, 0]),
        collateral_expires: Some(2_000_000_000),
        sim_platform_key: None,
    }
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn identity() -> String {
    format!("[[identity]]\nmr_enclave = \"{MRE}\"\nmr_signer = \"{MRS}\"\nisv_prod_id = 1\nmin_isv_svn = 2\n")
}

#[test]
fn accepts_a_listed_identity_on_an_up_to_date_platform() {
    assert_eq!(
        policy(&identity()).evaluate(&sgx(TcbStatus::UpToDate, &[])),
        Ok(())
    );
}

#[test]
fn measurement_mismatch_names_both_values() {
    let other = "11".repeat(32);
    let p = policy(&format!(
        "[[identity]]\nmr_enclave = [\"{other}\", \"{}\"]\n",
        "22".repeat(32)
    ));
    let r = p.evaluate(&sgx(TcbStatus::UpToDate, &[])).unwrap_err();
    assert_eq!(r.rule, "mr_enclave");
    let text = r.to_string();
    assert!(
        text.contains(MRE) && text.contains(&other) && text.contains("one of"),
        "{text}"
    );
}

#[test]
fn svn_product_and_tee_rules() {
    let mut c = sgx(TcbStatus::UpToDate, &[]);
    c.sgx.as_mut().unwrap().isv_svn = 1;
    assert_eq!(
        policy(&identity()).evaluate(&c).unwrap_err().rule,
        "min_isv_svn"
    );
    let mut c = sgx(TcbStatus::UpToDate, &[]);
    c.sgx.as_mut().unwrap().isv_prod_id = 9;
    assert_eq!(
        policy(&identity()).evaluate(&c).unwrap_err().rule,
        "isv_prod_id"
    );
    let p = policy(&format!(
        "[[identity]]\ntee = \"tdx\"\nmr_td = \"{}\"\n",
        "33".repeat(48)
    ));
    assert_eq!(
        p.evaluate(&sgx(TcbStatus::UpToDate, &[])).unwrap_err().rule,
        "identity.tee"
    );
}

#[test]
fn tcb_status_and_advisories_are_opt_in() {
    let c = sgx(TcbStatus::SWHardeningNeeded, &["INTEL-SA-00615"]);
    let r = policy(&identity()).evaluate(&c).unwrap_err();
    assert_eq!(r.rule, "allowed_tcb_statuses");
    assert!(
        r.to_string().contains("INTEL-SA-00615") && r.to_string().contains("UpToDate"),
        "{r}"
    );
    let p = policy(&format!(
        "allowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\n{}",
        identity()
    ));
    assert_eq!(p.evaluate(&c).unwrap_err().rule, "allowed_advisories");
    let p = policy(&format!(
        "allowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\nallowed_advisories = [\"INTEL-SA-00615\"]\n{}",
        identity()
    ));
    assert_eq!(p.evaluate(&c), Ok(()));
    let c2 = sgx(
        TcbStatus::SWHardeningNeeded,
        &["INTEL-SA-00615", "INTEL-SA-00289"],
    );
    let r = p.evaluate(&c2).unwrap_err();
    assert!(
        r.to_string().contains("INTEL-SA-00289") && !r.found.contains("00615"),
        "{r}"
    );
    assert_eq!(
        policy(&identity())
            .evaluate(&sgx(TcbStatus::Revoked, &[]))
            .unwrap_err()
            .rule,
        "allowed_tcb_statuses"
    );
}

#[test]
fn debug_is_refused_unless_allowed() {
    let mut c = sgx(TcbStatus::UpToDate, &[]);
    let s = c.sgx.as_mut().unwrap();
    s.debug = true;
    s.attributes[0] |= 0x02;
    assert_eq!(
        policy(&identity()).evaluate(&c).unwrap_err().rule,
        "allow_debug"
    );
    assert_eq!(
        policy(&format!("allow_debug = true\n{}", identity())).evaluate(&c),
        Ok(())
    );
}

#[test]
fn odd_enclave_attributes_are_refused() {
    let mut c = sgx(TcbStatus::UpToDate, &[]);
    c.sgx.as_mut().unwrap().attributes[0] = 0x15; // PROVISION_KEY set
    let r = policy(&identity()).evaluate(&c).unwrap_err();
    assert!(r.to_string().contains("PROVISION_KEY"), "{r}");
}

#[test]
fn simulated_evidence_needs_opt_in_and_a_listed_key() {
    let mut c = sgx(TcbStatus::UpToDate, &[]);
    c.tee = TeeKind::Sim;
    c.tcb_status = None;
    c.fmspc = None;
    c.sim_platform_key = Some(SIMKEY.into());
    assert_eq!(
        policy(&identity()).evaluate(&c).unwrap_err().rule,
        "allow_simulated"
    );
    let other = format!("03{}", "bb".repeat(32));
    let p = policy(&format!(
        "allow_simulated = true\nsimulated_platform_keys = [\"{other}\"]\n{}",
        identity()
    ));
    assert_eq!(p.evaluate(&c).unwrap_err().rule, "simulated_platform_keys");
    let p = policy(&format!(
        "allow_simulated = true\nsimulated_platform_keys = [\"{SIMKEY}\"]\n{}",
        identity()
    ));
    assert_eq!(p.evaluate(&c), Ok(()));
}

#[test]
fn service_td_needs_opt_in() {
    let mr_td = "44".repeat(48);
    let c = VerifiedClaims {
        tee: TeeKind::Tdx,
        sgx: None,
        tdx: Some(TdxIdentity {
            mr_td: arr(&mr_td),
            rtmr: [[0; 48]; 4],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            mr_seam: [0; 48],
            mr_servicetd: Some([7; 48]),
            td_attributes: [0; 8],
            debug: false,
        }),
        report_data: [0; 64],
        tcb_status: Some(TcbStatus::UpToDate),
        advisory_ids: vec![],
        fmspc: None,
        collateral_expires: None,
        sim_platform_key: None,
    };
    let id = format!("[[identity]]\ntee = \"tdx\"\nmr_td = \"{mr_td}\"\n");
    assert_eq!(
        policy(&id).evaluate(&c).unwrap_err().rule,
        "allow_service_td"
    );
    assert_eq!(
        policy(&format!("allow_service_td = true\n{id}")).evaluate(&c),
        Ok(())
    );
}

#[test]
fn bad_policies_are_refused_with_the_reason() {
    for (text, needle) in [
        ("", "no [[identity]]"),
        ("[[identity]]\nname = \"x\"\n", "names no measurement"),
        (
            "[[identity]]\nmr_enclave = \"abcd\"\n",
            "not 32 bytes of hex",
        ),
        ("colour = 1\n", "unknown field"),
        (
            "allowed_tcb_statuses = [\"Fine\"]\naccept_any_identity = true\n",
            "not one of Intel's",
        ),
        (
            "allowed_tcb_statuses = [\"Revoked\"]\naccept_any_identity = true\n",
            "revoked",
        ),
        (
            "allow_simulated = true\naccept_any_identity = true\n",
            "simulated_platform_keys",
        ),
        (
            &format!(
                "[[identity]]\nmr_enclave = \"{MRE}\"\nmr_td = \"{}\"\n",
                "00".repeat(48)
            ),
            "mixes SGX fields",
        ),
    ] {
        let e = Policy::from_toml(text, "p.toml").unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("p.toml"), "{text:?}: {e}");
    }
}
