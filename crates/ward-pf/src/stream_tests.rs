//! Memory of whole-file reads of forged files. A unit test because forging a file whose MHT
//! nodes all authenticate but whose data does not needs the crate's node types: a real writer
//! cannot produce one, and encrypting the hundreds of MiB for real would be slow.

use super::*;
use crate::crypto::{KeyRng, WrapKey};
use crate::layout::Shape;
use crate::node::{Metadata, MhtNode, NodeCrypto};
use std::process::Command;

const FORGED_SIZE: u64 = 768 << 20;
const CHILD_ENV: &str = "WARD_PF_TEST_FORGED_FILE";

fn key() -> WrapKey {
    WrapKey::from_bytes([7; 16])
}

/// Writes a sparse file declaring `size` bytes whose metadata and every MHT node authenticate
/// under `key()`, while every data node is zeros and fails: what a holder of the key (or a bug)
/// could produce, and what only reading the data reveals.
fn forge(path: &std::path::Path, size: u64) {
    let mut rng = KeyRng::from_os().unwrap();
    let shape = Shape::for_size(size).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    Storage::set_len(&mut f, shape.physical_len()).unwrap();
    let mut waiting: HashMap<u64, NodeCrypto> = HashMap::new();
    let mut root = None;
    // Children before parents, as the writer finalises them.
    for m in (0..shape.mht_nodes).rev() {
        let mut mht = MhtNode::default();
        let first = m * DATA_PER_MHT;
        for slot in 0..(shape.data_nodes - first).min(DATA_PER_MHT) as usize {
            let bogus = NodeCrypto {
                key: rng.node_key(),
                tag: [0; 16],
            };
            mht.set_data(slot, &bogus);
        }
        for slot in 0..CHILDREN_PER_MHT {
            if let Some(c) = waiting.remove(&(m * CHILDREN_PER_MHT + 1 + slot)) {
                mht.set_child(slot as usize, &c);
            }
        }
        let (sealed, crypto) = mht.seal(&mut rng);
        f.write_all_at(&sealed[..], mht_physical(m) * NODE_SIZE as u64)
            .unwrap();
        if m == 0 {
            root = Some(crypto);
        } else {
            waiting.insert(m, crypto);
        }
    }
    let mut meta = Metadata::new("forged.pf").unwrap();
    meta.size = size;
    meta.root = root.unwrap();
    f.write_all_at(&meta.encrypt(&key(), &mut rng).to_bytes()[..], 0)
        .unwrap();
}

/// Peak resident memory of this process so far, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// In a child process of its own (so no other test's allocations count): decrypts the forged
/// file and prints how much the peak resident memory grew.
#[test]
fn forged_size_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful when run by the test below.
    };
    let f = std::fs::File::open(path).unwrap();
    let before = vm_hwm_kib();
    let r = decrypt_to_vec(&f, &key(), None, Options::default());
    let grew = vm_hwm_kib() - before;
    let outcome = match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    println!("\nFORGED outcome={outcome}\nFORGED grew_kib={grew}");
}

#[test]
fn a_forged_huge_size_is_refused_before_its_memory_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forged.pf");
    forge(&path, FORGED_SIZE);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "stream::tests::forged_size_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("FORGED {name}=")))
            .unwrap_or_else(|| panic!("no {name} in the child's output: {stdout}"))
            .to_string()
    };
    // The first data node fails, as it must; the point is what that cost.
    let outcome = field("outcome");
    assert!(
        outcome.starts_with("data node 0 (physical node 2,")
            && outcome.contains("failed authentication"),
        "{outcome}"
    );
    let grew: u64 = field("grew_kib").parse().unwrap();
    // One growth batch (~12 MiB) is expected; the declared 768 MiB must not be.
    assert!(
        grew < 64 << 10,
        "decrypting a forged file declaring {FORGED_SIZE} bytes grew the peak RSS by {grew} KiB"
    );

    // Above the limit: refused before any data node is read, without a byte of the metadata.
    let f = std::fs::File::open(&path).unwrap();
    let opts = Options {
        memory_limit: FORGED_SIZE - 1,
        ..Options::default()
    };
    let e = decrypt_to_vec(&f, &key(), None, opts).unwrap_err();
    assert!(
        matches!(e, Error::OverLimit { limit } if limit == FORGED_SIZE - 1),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(!text.contains(&FORGED_SIZE.to_string()), "{text}");
    assert!(!text.contains("forged.pf"), "{text}");
}
