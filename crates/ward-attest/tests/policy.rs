//! Policies accept what they name and refuse everything else with the rule, the evidence's
//! value and the expected one.

use ward_attest::claims::{SgxIdentity, TdxIdentity};
use ward_attest::{Identity, Policy, TcbStatus, TeeKind, VerifiedClaims};

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
        workload: None,
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
        workload: None,
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
        let e = chain(&Policy::from_toml(text, "p.toml").unwrap_err());
        assert!(e.contains(needle) && e.contains("p.toml"), "{text:?}: {e}");
    }
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    ward_attest::ErrorChain(e).to_string()
}

#[test]
fn a_syntax_error_is_the_cause_not_repeated_in_the_message() {
    let e = Policy::from_toml("colour = 1\n", "p.toml").unwrap_err();
    let top = e.to_string();
    let cause = std::error::Error::source(&e)
        .expect("the TOML error is kept")
        .to_string();
    assert!(
        cause.contains("unknown field") && !top.contains("unknown field"),
        "{top} / {cause}"
    );
}

#[test]
fn policies_built_in_code_serialise_and_parse_back_to_the_same_value() {
    use ward_attest::sim::SimPlatformKey;
    let key = SimPlatformKey::generate().public();
    let mre: [u8; 32] = hex::decode(MRE).unwrap().try_into().unwrap();
    let built = [
        Policy::dev_sim(&key, None),
        Policy::dev_sim(&key, Some(mre)),
        Policy::for_workload(
            Identity::sgx(mre)
                .named("classifier")
                .mr_signer([7; 32])
                .isv_prod_id(3)
                .min_isv_svn(2),
        ),
        Policy::for_workload(Identity::sgx(mre)).trust_simulated_platform(&key),
    ];
    for p in built {
        let text = p.to_toml();
        let back = Policy::from_toml(&text, "generated")
            .unwrap_or_else(|e| panic!("{text}\n{}", chain(&e)));
        assert_eq!(back, p, "{text}");
        assert_eq!(back.to_toml(), text);
        assert_eq!(
            p.allows_simulated(),
            text.starts_with("# DEVELOPMENT ONLY"),
            "{text}"
        );
    }
    // Parsed files serialise too, lists and all, and read back the same.
    let text = format!(
        "allowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\nallowed_advisories = [\"*\"]\nallow_debug = true\n\
         [[identity]]\nmr_enclave = [\"{MRE}\", \"{}\"]\n[[identity]]\ntee = \"tdx\"\nmr_td = \"{}\"\nrtmr3 = \"{}\"\n",
        "11".repeat(32),
        "22".repeat(48),
        "33".repeat(48)
    );
    let p = Policy::from_toml(&text, "file").unwrap();
    assert_eq!(
        Policy::from_toml(&p.to_toml(), "again").unwrap(),
        p,
        "{}",
        p.to_toml()
    );
}

#[test]
fn a_dev_sim_policy_accepts_its_platform_and_workload_only() {
    use ward_attest::sim::{SimIdentity, SimPlatformKey, SimQuote};
    let key = SimPlatformKey::generate();
    let id = SimIdentity {
        mr_enclave: [5; 32],
        mr_signer: [0; 32],
        isv_prod_id: 0,
        isv_svn: 0,
        debug: false,
    };
    let claims = SimQuote::sign(&key, &id, &[0; 64]).verify().unwrap();
    assert!(Policy::dev_sim(&key.public(), Some([5; 32]))
        .evaluate(&claims)
        .is_ok());
    assert!(Policy::dev_sim(&key.public(), None)
        .evaluate(&claims)
        .is_ok());
    assert_eq!(
        Policy::dev_sim(&key.public(), Some([6; 32]))
            .evaluate(&claims)
            .unwrap_err()
            .rule,
        "mr_enclave"
    );
    let other = SimPlatformKey::generate().public();
    assert_eq!(
        Policy::dev_sim(&other, None)
            .evaluate(&claims)
            .unwrap_err()
            .rule,
        "simulated_platform_keys"
    );
    assert_eq!(
        Policy::for_workload(Identity::sgx([5; 32]))
            .evaluate(&claims)
            .unwrap_err()
            .rule,
        "allow_simulated"
    );
}

#[test]
fn default_rules_accept_any_workload_on_a_trustworthy_platform_only() {
    let p = Policy::default_rules();
    // The same rules as a policy file saying only that any identity will do.
    assert_eq!(p, policy("accept_any_identity = true\n"));
    assert_eq!(p.evaluate(&sgx(TcbStatus::UpToDate, &[])), Ok(()));
    let refused = |c: &VerifiedClaims| p.evaluate(c).unwrap_err().rule;
    assert_eq!(
        refused(&sgx(TcbStatus::SWHardeningNeeded, &["INTEL-SA-00615"])),
        "allowed_tcb_statuses"
    );
    assert_eq!(
        refused(&sgx(TcbStatus::OutOfDate, &[])),
        "allowed_tcb_statuses"
    );
    let mut debug = sgx(TcbStatus::UpToDate, &[]);
    let s = debug.sgx.as_mut().unwrap();
    s.debug = true;
    s.attributes[0] |= 0x02;
    assert_eq!(refused(&debug), "allow_debug");
    let mut sim = sgx(TcbStatus::UpToDate, &[]);
    sim.tee = TeeKind::Sim;
    sim.tcb_status = None;
    sim.sim_platform_key = Some(SIMKEY.into());
    assert_eq!(refused(&sim), "allow_simulated");
}

/// `warnings` names each loosened rule and each identity that pins only the platform layer; a
/// strict policy naming both layers has none.
#[test]
fn warnings_name_loose_rules_and_one_layer_identities() {
    let mre = "ab".repeat(32);
    let strict = Policy::from_toml(
        &format!(
            "[[identity]]\nmr_enclave = \"{mre}\"\nworkload_measurement = \"{mre}\"\nworkload_min_isv_svn = 1\n"
        ),
        "t",
    )
    .unwrap();
    assert_eq!(strict.warnings(), Vec::<String>::new());

    let platform_only = Policy::from_toml(
        &format!("[[identity]]\nname = \"gramine enclave\"\nmr_enclave = \"{mre}\"\n"),
        "t",
    )
    .unwrap();
    let w = platform_only.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("\"gramine enclave\"") && w[0].contains("only the platform layer"),
        "{w:?}"
    );

    let loose = Policy::from_toml(
        &format!(
            "allow_debug = true\nallowed_tcb_statuses = [\"UpToDate\", \"OutOfDate\"]\nallowed_advisories = [\"*\"]\n\
             allow_simulated = true\nsimulated_platform_keys = [\"{SIMKEY}\"]\n\
             [[identity]]\nmr_signer = \"{mre}\"\nworkload_signer = \"{mre}\"\n"
        ),
        "t",
    )
    .unwrap();
    let w = loose.warnings().join("\n");
    for says in [
        "allow_debug",
        "OutOfDate",
        "every Intel security advisory",
        "allow_simulated",
        "no minimum SVN",
    ] {
        assert!(w.contains(says), "{says}: {w}");
    }
    assert!(!w.contains("only the platform layer"), "{w}");
}
