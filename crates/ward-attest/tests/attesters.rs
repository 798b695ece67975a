//! Attesters against directories laid out like Gramine's `/dev/attestation` and configfs-tsm,
//! returning recorded real quotes.

use std::fs;
use std::path::{Path, PathBuf};
use ward_attest::attester::{Attester, GramineAttester, SimAttester, TsmAttester};
use ward_attest::sim::{SimIdentity, SimPlatformKey, SimQuote};
use ward_attest::{Error, TeeKind};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .join("quote.bin")
}

fn recorded(name: &str) -> Vec<u8> {
    fs::read(data(name)).unwrap()
}

/// The report data a recorded quote carries (SGX v3: 48 + 320; TDX v4: 48 + 520).
fn report_data_of(quote: &[u8], offset: usize) -> [u8; 64] {
    quote[offset..offset + 64].try_into().unwrap()
}

const SGX_QUOTE: &str = "sgx-v3-automata-swhardening";
const SGX_QUOTE_HELLO: &str = "sgx-v3-phala-config-swhardening";
const TDX_QUOTE: &str = "tdx-v4-phala-uptodate";
const SGX_V3_REPORT_DATA: usize = 368;
const TDX_V4_REPORT_DATA: usize = 568;

// ---------------------------------------------------------------------------------------------
// sim

#[test]
fn sim_attester_signs_the_report_data() {
    let key = SimPlatformKey::generate();
    let public = key.public();
    let identity = SimIdentity {
        mr_enclave: [1; 32],
        mr_signer: [2; 32],
        isv_prod_id: 3,
        isv_svn: 4,
        debug: false,
    };
    let attester = SimAttester::new(key, identity.clone());
    assert_eq!(attester.name(), "sim");
    assert_eq!(attester.platform_key(), public);
    assert_eq!(attester.identity(), &identity);
    assert!(format!("{attester:?}").contains("<redacted>"));

    let rd = [0x5a; 64];
    let evidence = attester.attest(&rd).unwrap();
    assert_eq!(evidence.tee, TeeKind::Sim);
    let claims = SimQuote::parse(&evidence.quote).unwrap().verify().unwrap();
    assert_eq!(claims.report_data, rd);
    assert_eq!(claims.sim_platform_key, Some(public.to_hex()));
    assert_eq!(claims.sgx.unwrap().mr_enclave, [1; 32]);

    // Usable as a trait object, as the CLI will hold it.
    let boxed: Box<dyn Attester> = Box::new(attester);
    assert_eq!(boxed.attest(&rd).unwrap().tee, TeeKind::Sim);
    assert!(format!("{evidence:?}").contains("241 bytes"));
}

// ---------------------------------------------------------------------------------------------
// Gramine

/// A directory laid out like Gramine's `/dev/attestation`.
fn gramine_dir(attestation_type: &str, quote: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("attestation_type"), attestation_type).unwrap();
    // Gramine shows the last report data written (zeros initially); prefill with something else
    // so the test sees the write.
    fs::write(dir.path().join("user_report_data"), [0xaa; 64]).unwrap();
    fs::write(dir.path().join("quote"), quote).unwrap();
    dir
}

#[test]
fn gramine_writes_report_data_and_returns_the_quote() {
    for name in [SGX_QUOTE, SGX_QUOTE_HELLO] {
        let quote = recorded(name);
        let rd = report_data_of(&quote, SGX_V3_REPORT_DATA);
        let dir = gramine_dir("dcap", &quote);
        let attester = GramineAttester::with_root(dir.path());
        assert_eq!(attester.name(), "gramine");

        let evidence = attester.attest(&rd).unwrap();
        assert_eq!(evidence.tee, TeeKind::Sgx);
        assert_eq!(evidence.quote, quote);
        assert_eq!(
            fs::read(dir.path().join("user_report_data")).unwrap(),
            rd.to_vec()
        );
    }
    // The phala quote binds "Hello, world!": the check is not vacuous over zeros.
    let hello = report_data_of(&recorded(SGX_QUOTE_HELLO), SGX_V3_REPORT_DATA);
    assert!(hello.starts_with(b"Hello, world!"));
}

#[test]
fn gramine_attestation_type_with_trailing_newline_is_accepted() {
    let quote = recorded(SGX_QUOTE);
    let dir = gramine_dir("dcap\n", &quote);
    let rd = report_data_of(&quote, SGX_V3_REPORT_DATA);
    GramineAttester::with_root(dir.path()).attest(&rd).unwrap();
}

#[test]
fn gramine_without_remote_attestation_says_how_to_enable_it() {
    let dir = gramine_dir("none", &recorded(SGX_QUOTE));
    let err = GramineAttester::with_root(dir.path())
        .attest(&[0; 64])
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(
        msg.contains(
            "Gramine was started without remote attestation (sgx.remote_attestation = \"dcap\")"
        ),
        "{msg}"
    );
    assert!(msg.contains("attestation_type"), "{msg}");
    // Nothing was written.
    assert_eq!(
        fs::read(dir.path().join("user_report_data")).unwrap(),
        vec![0xaa; 64]
    );
}

#[test]
fn gramine_other_attestation_types_are_unsupported() {
    for kind in ["epid", "tdx", ""] {
        let dir = gramine_dir(kind, &recorded(SGX_QUOTE));
        let err = GramineAttester::with_root(dir.path())
            .attest(&[0; 64])
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{kind}: {err:?}");
        assert!(err.to_string().contains("dcap"), "{err}");
    }
}

#[test]
fn gramine_missing_directory_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("attestation");
    let err = GramineAttester::with_root(&root)
        .attest(&[0; 64])
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(msg.contains(&root.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(msg.contains("Gramine SGX enclave"), "{msg}");

    assert_eq!(
        format!("{:?}", GramineAttester::new()),
        format!("{:?}", GramineAttester::with_root("/dev/attestation"))
    );
}

#[test]
fn gramine_missing_quote_file_names_it() {
    let dir = gramine_dir("dcap", &recorded(SGX_QUOTE));
    fs::remove_file(dir.path().join("quote")).unwrap();
    let err = GramineAttester::with_root(dir.path())
        .attest(&[0; 64])
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("quote"), "{err}");
}

#[test]
fn gramine_quote_for_other_report_data_is_refused() {
    let quote = recorded(SGX_QUOTE_HELLO);
    let dir = gramine_dir("dcap", &quote);
    let err = GramineAttester::with_root(dir.path())
        .attest(&[0x11; 64])
        .unwrap_err();
    assert!(matches!(err, Error::Verification { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does not carry the report data"),
        "{err}"
    );
}

#[test]
fn gramine_refuses_a_tdx_quote_or_garbage() {
    let tdx = recorded(TDX_QUOTE);
    let dir = gramine_dir("dcap", &tdx);
    let err = GramineAttester::with_root(dir.path())
        .attest(&report_data_of(&tdx, TDX_V4_REPORT_DATA))
        .unwrap_err();
    assert!(matches!(err, Error::Verification { .. }), "{err:?}");
    assert!(err.to_string().contains("tdx quote"), "{err}");

    for junk in [&b""[..], &b"not a quote"[..], &[0u8; 100][..]] {
        let dir = gramine_dir("dcap", junk);
        assert!(GramineAttester::with_root(dir.path())
            .attest(&[0; 64])
            .is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// configfs-tsm

const ENTRY: &str = "ward-test";

/// A directory laid out like `/sys/kernel/config/tsm/report` with one entry already created (a
/// plain directory cannot create the attribute files on mkdir as configfs does).
fn tsm_dir(provider: &str, outblob: &[u8], generation: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let entry = dir.path().join(ENTRY);
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("provider"), provider).unwrap();
    fs::write(entry.join("outblob"), outblob).unwrap();
    fs::write(entry.join("generation"), generation).unwrap();
    fs::write(entry.join("inblob"), b"").unwrap();
    dir
}

#[test]
fn tsm_writes_inblob_and_returns_the_tdx_quote() {
    let quote = recorded(TDX_QUOTE);
    let rd = report_data_of(&quote, TDX_V4_REPORT_DATA);
    assert_ne!(rd, [0; 64]);
    let dir = tsm_dir("tdx_guest\n", &quote, "7\n");
    let attester = TsmAttester::with_root(dir.path()).with_entry_name(ENTRY);
    assert_eq!(attester.name(), "tsm");

    let evidence = attester.attest(&rd).unwrap();
    assert_eq!(evidence.tee, TeeKind::Tdx);
    assert_eq!(evidence.quote, quote);
    assert_eq!(
        fs::read(dir.path().join(ENTRY).join("inblob")).unwrap(),
        rd.to_vec()
    );
    // The entry existed before: it is left in place.
    assert!(dir.path().join(ENTRY).is_dir());
}

#[test]
fn tsm_missing_root_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tsm").join("report");
    let err = TsmAttester::with_root(&root).attest(&[0; 64]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(msg.contains(&root.display().to_string()), "{msg}");
    assert!(msg.contains("not a TDX/SEV guest"), "{msg}");
    assert!(
        msg.contains("mount -t configfs none /sys/kernel/config"),
        "{msg}"
    );
}

#[test]
fn tsm_sev_is_unsupported_for_now() {
    let dir = tsm_dir("sev_guest\n", b"whatever", "0\n");
    let err = TsmAttester::with_root(dir.path())
        .with_entry_name(ENTRY)
        .attest(&[0; 64])
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("SEV-SNP"), "{err}");
    // Refused before asking for a report.
    assert_eq!(
        fs::read(dir.path().join(ENTRY).join("inblob")).unwrap(),
        b""
    );

    let dir = tsm_dir("arm_cca_guest\n", b"whatever", "0\n");
    let err = TsmAttester::with_root(dir.path())
        .with_entry_name(ENTRY)
        .attest(&[0; 64])
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("arm_cca_guest"), "{err}");
}

#[test]
fn tsm_quote_for_other_report_data_is_refused() {
    let quote = recorded(TDX_QUOTE);
    let dir = tsm_dir("tdx_guest\n", &quote, "1\n");
    let err = TsmAttester::with_root(dir.path())
        .with_entry_name(ENTRY)
        .attest(&[0x22; 64])
        .unwrap_err();
    assert!(matches!(err, Error::Verification { .. }), "{err:?}");
    assert!(err.to_string().contains("outblob"), "{err}");
}

#[test]
fn tsm_refuses_an_sgx_quote_from_a_tdx_provider() {
    let sgx = recorded(SGX_QUOTE);
    let dir = tsm_dir("tdx_guest\n", &sgx, "1\n");
    let err = TsmAttester::with_root(dir.path())
        .with_entry_name(ENTRY)
        .attest(&report_data_of(&sgx, SGX_V3_REPORT_DATA))
        .unwrap_err();
    assert!(matches!(err, Error::Verification { .. }), "{err:?}");
}

#[test]
fn tsm_bad_generation_is_malformed() {
    let quote = recorded(TDX_QUOTE);
    let dir = tsm_dir("tdx_guest\n", &quote, "many\n");
    let err = TsmAttester::with_root(dir.path())
        .with_entry_name(ENTRY)
        .attest(&report_data_of(&quote, TDX_V4_REPORT_DATA))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                field: "generation",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tsm_entry_name_must_be_one_component() {
    let dir = tsm_dir("tdx_guest\n", b"", "0\n");
    for name in ["", ".", "..", "a/b", "../x"] {
        let err = TsmAttester::with_root(dir.path())
            .with_entry_name(name)
            .attest(&[0; 64])
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{name:?}: {err:?}");
    }
}

#[test]
fn tsm_fresh_entries_are_created_and_removed() {
    // On a plain directory, mkdir creates an empty entry (no configfs attributes), so reading
    // `provider` fails; the error names the file, and the entry is removed again.
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let err = TsmAttester::with_root(dir.path())
            .attest(&[0; 64])
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(msg.contains("provider"), "{msg}");
        assert!(
            msg.contains(&format!("ward-{}-", std::process::id())),
            "{msg}"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    // A fixed name that does not exist yet is created, and removed afterwards.
    let err = TsmAttester::with_root(dir.path())
        .with_entry_name("fresh")
        .attest(&[0; 64])
        .unwrap_err();
    assert!(err.to_string().contains("provider"), "{err}");
    assert!(!dir.path().join("fresh").exists());
}

#[test]
fn tsm_root_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report");
    fs::write(&file, b"").unwrap();
    let err = TsmAttester::with_root(&file).attest(&[0; 64]).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn attesters_are_send_and_sync_trait_objects() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SimAttester>();
    assert_send_sync::<GramineAttester>();
    assert_send_sync::<TsmAttester>();
    let all: Vec<Box<dyn Attester>> = vec![
        Box::new(GramineAttester::new()),
        Box::new(TsmAttester::new()),
    ];
    let names: Vec<_> = all.iter().map(|a| a.name()).collect();
    assert_eq!(names, ["gramine", "tsm"]);
}

#[test]
fn attester_kinds_parse_and_display_the_same_names() {
    use ward_attest::attester::AttesterKind;
    for k in AttesterKind::ALL {
        assert_eq!(k.to_string().parse::<AttesterKind>().unwrap(), k);
    }
    assert_eq!("tsm".parse::<AttesterKind>().unwrap(), AttesterKind::Tsm);
    let err = "sgx".parse::<AttesterKind>().unwrap_err().to_string();
    assert!(err.contains("\"sgx\"") && err.contains("gramine"), "{err}");
    // The simulated attester needs its key; the hardware ones are built as is.
    assert!(AttesterKind::Sim.attester(None).is_err());
    assert_eq!(
        AttesterKind::Gramine.attester(None).unwrap().name(),
        "gramine"
    );
}
