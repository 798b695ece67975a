//! Model-based tests: ward-pf against a plain `Vec<u8>`.
//!
//! - random sizes round-trip through stream `encrypt` / `decrypt` and random-access reads;
//! - random sequences of `write_at` / `set_len` / `flush` / reopen / `read_at` on a
//!   [`ProtectedFile`] (sometimes with a 4-node cache, so eviction forces flushes mid-operation)
//!   behave like the same operations on a `Vec<u8>`, and after every flush the storage is a valid
//!   protected file whose stream decryption equals the model;
//! - a fixed sequence shrinks and regrows a file across every MHT level, which random sizes up to
//!   600 KB cannot reach.

mod common;
use common::{opts, pattern};
use std::cell::RefCell;
use std::io::Cursor;
use std::rc::Rc;

use proptest::prelude::*;
use ward_pf::layout::{Shape, NODE_SIZE};
use ward_pf::{decrypt, encrypt, info, verify, Mode, ProtectedFile, Source, Storage, WrapKey};

const INLINE: u64 = 3072;
const NODE: u64 = NODE_SIZE as u64;
const PATH: &str = "model.pf";

fn key() -> WrapKey {
    WrapKey::from_bytes(*b"model-test-key-0")
}

/// In-memory storage the test can inspect while a `ProtectedFile` owns a handle to it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Shared {
    fn new(bytes: Vec<u8>) -> Shared {
        Shared(Rc::new(RefCell::new(bytes)))
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }
}

impl Source for Shared {
    fn byte_len(&self) -> std::io::Result<u64> {
        self.0.borrow().byte_len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.0.borrow().read_exact_at(buf, offset)
    }
}

impl Storage for Shared {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.borrow_mut().write_all_at(buf, offset)
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        Storage::set_len(&mut *self.0.borrow_mut(), len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks that `bytes` is a complete, valid protected file holding exactly `model`.
fn check_storage(bytes: &[u8], model: &[u8], when: &str) -> Result<(), TestCaseError> {
    let shape = Shape::for_size(model.len() as u64).unwrap();
    prop_assert_eq!(
        bytes.len() as u64,
        shape.physical_len(),
        "{}: on-disk length for {} bytes",
        when,
        model.len()
    );
    let mut out = Vec::new();
    let i = decrypt(bytes, &key(), Some(PATH), &mut out, opts(1))
        .map_err(|e| TestCaseError::fail(format!("{when}: decrypt: {e}")))?;
    prop_assert_eq!(i.size, model.len() as u64, "{}: size", when);
    if out != model {
        let at = out.iter().zip(model).position(|(a, b)| a != b);
        return Err(TestCaseError::fail(format!(
            "{when}: decrypted storage differs from the model (lengths {} / {}, first difference at {at:?})",
            out.len(),
            model.len()
        )));
    }
    verify(bytes, &key(), Some(PATH), opts(2))
        .map_err(|e| TestCaseError::fail(format!("{when}: verify: {e}")))?;
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Write { off: u64, len: usize, seed: u64 },
    SetLen(u64),
    Read { off: u64, len: usize },
    Flush,
    Reopen,
}

/// Offsets spread over ~600 KB (two MHT nodes' worth of data), with extra weight on node and
/// MHT boundaries.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..600_000,
        2 => (0u64..150, -3i64..4).prop_map(|(d, delta)| (INLINE + NODE * d).saturating_add_signed(delta)),
        1 => (94u64..99, -2i64..3).prop_map(|(d, delta)| (INLINE + NODE * d).saturating_add_signed(delta)),
        1 => 0u64..4000,
    ]
}

fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 1usize..20_000,
        1 => 1usize..16,
        1 => 4090usize..4100,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (offset(), length(), any::<u64>()).prop_map(|(off, len, seed)| Op::Write { off, len, seed }),
        2 => prop_oneof![offset(), Just(0u64), Just(INLINE), Just(INLINE + 1)].prop_map(Op::SetLen),
        3 => (offset(), prop_oneof![0usize..30_000, Just(1)]).prop_map(|(off, len)| Op::Read { off, len }),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

fn apply_model(model: &mut Vec<u8>, op: &Op) {
    match *op {
        Op::Write { off, len, seed } => {
            let off = off as usize;
            if model.len() < off + len {
                model.resize(off + len, 0);
            }
            model[off..off + len].copy_from_slice(&pattern(len, seed));
        }
        Op::SetLen(n) => model.resize(n as usize, 0),
        Op::Read { .. } | Op::Flush | Op::Reopen => {}
    }
}

fn open(storage: Shared, cache: Option<usize>) -> ProtectedFile<Shared> {
    let mut pf = ProtectedFile::open(storage, &key(), Some(PATH), Mode::ReadWrite).unwrap();
    if let Some(c) = cache {
        pf.set_cache_capacity(c);
    }
    pf
}

fn run_ops(
    initial: Option<Vec<u8>>,
    ops: &[Op],
    cache: Option<usize>,
) -> Result<(), TestCaseError> {
    let mut model: Vec<u8> = initial.clone().unwrap_or_default();
    let mut storage = Shared::default();
    let mut pf = match initial {
        None => {
            let mut pf = ProtectedFile::create(storage.clone(), &key(), PATH).unwrap();
            if let Some(c) = cache {
                pf.set_cache_capacity(c);
            }
            pf
        }
        Some(data) => {
            let mut bytes = Vec::new();
            encrypt(&mut Cursor::new(&data), &key(), PATH, &mut bytes, opts(1)).unwrap();
            storage = Shared::new(bytes);
            open(storage.clone(), cache)
        }
    };

    for (step, op) in ops.iter().enumerate() {
        let when = format!("after op {step} ({op:?})");
        match *op {
            Op::Write { off, len, seed } => {
                pf.write_at(off, &pattern(len, seed))
                    .map_err(|e| TestCaseError::fail(format!("{when}: write_at: {e}")))?;
            }
            Op::SetLen(n) => pf
                .set_len(n)
                .map_err(|e| TestCaseError::fail(format!("{when}: set_len: {e}")))?,
            Op::Read { off, len } => {
                let mut buf = vec![0xC3u8; len];
                let n = pf
                    .read_at(off, &mut buf)
                    .map_err(|e| TestCaseError::fail(format!("{when}: read_at: {e}")))?;
                let want = model.get(off as usize..).unwrap_or(&[]);
                let want = &want[..want.len().min(len)];
                prop_assert_eq!(n, want.len(), "{}: read_at count", when);
                prop_assert!(buf[..n] == *want, "{}: read_at content", when);
                prop_assert!(
                    buf[n..].iter().all(|&b| b == 0xC3),
                    "{}: read_at wrote past its count",
                    when
                );
            }
            Op::Flush => {
                pf.flush()
                    .map_err(|e| TestCaseError::fail(format!("{when}: flush: {e}")))?;
                prop_assert!(!pf.is_dirty(), "{}: dirty after flush", when);
                check_storage(&storage.snapshot(), &model, &when)?;
            }
            Op::Reopen => {
                let s = pf
                    .into_inner()
                    .map_err(|e| TestCaseError::fail(format!("{when}: into_inner: {e}")))?;
                let bytes = s.snapshot();
                check_storage(&bytes, &model, &when)?;
                storage = Shared::new(bytes);
                pf = open(storage.clone(), cache);
            }
        }
        apply_model(&mut model, op);
        prop_assert_eq!(pf.len(), model.len() as u64, "{}: len", when);
        prop_assert_eq!(pf.info().size, model.len() as u64, "{}: info().size", when);
    }

    // Everything written so far is read back through the handle, then through the storage.
    let mut all = vec![0u8; model.len()];
    prop_assert_eq!(pf.read_at(0, &mut all).unwrap(), model.len());
    prop_assert!(all == model, "final read_at differs from the model");
    let s = pf
        .into_inner()
        .map_err(|e| TestCaseError::fail(format!("final into_inner: {e}")))?;
    check_storage(&s.snapshot(), &model, "at the end")?;
    Ok(())
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..300_000,
        1 => 0usize..8,
        1 => (0usize..73, -2isize..3).prop_map(|(d, delta)| (3072 + 4096 * d).saturating_add_signed(delta)),
    ]
}

/// Case count: `default`, or `PROPTEST_CASES` from the environment for a longer soak.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn stream_round_trip_of_random_sizes(
        size in size(),
        seed in any::<u64>(),
        threads in 1usize..=2,
        reads in proptest::collection::vec((any::<u32>(), 0usize..20_000), 0..8),
    ) {
        let data = pattern(size, seed);
        let mut cipher = Vec::new();
        let i = encrypt(&mut Cursor::new(&data), &key(), PATH, &mut cipher, opts(threads)).unwrap();
        prop_assert_eq!(i.size, size as u64);
        prop_assert_eq!(cipher.len() as u64, Shape::for_size(size as u64).unwrap().physical_len());
        let mut out = Vec::new();
        decrypt(&cipher, &key(), Some(PATH), &mut out, opts(3 - threads)).unwrap();
        prop_assert!(out == data, "stream decrypt differs");
        prop_assert_eq!(info(&cipher, &key(), Some(PATH)).unwrap().size, size as u64);

        // Random ranges through the random-access reader.
        let mut pf = ProtectedFile::open(cipher, &key(), Some(PATH), Mode::Read).unwrap();
        for (off, len) in reads {
            let off = off as usize % (size + 10);
            let mut buf = vec![0u8; len];
            let n = pf.read_at(off as u64, &mut buf).unwrap();
            let want = data.get(off..).unwrap_or(&[]);
            let want = &want[..want.len().min(len)];
            prop_assert_eq!(n, want.len());
            prop_assert!(&buf[..n] == want, "read_at({}, {}) differs", off, len);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_match_a_vec_model(
        ops in proptest::collection::vec(op(), 1..40),
        cache in prop_oneof![2 => Just(None), 1 => Just(Some(4usize)), 1 => Just(Some(6usize))],
    ) {
        run_ops(None, &ops, cache)?;
    }

    #[test]
    fn random_operations_on_a_stream_encrypted_file(
        initial_len in prop_oneof![0usize..450_000, Just(3072usize), Just(3072 + 4096 * 96)],
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..25),
        cache in prop_oneof![Just(None), Just(Some(4usize))],
    ) {
        run_ops(Some(pattern(initial_len, seed)), &ops, cache)?;
    }
}

/// Shrinks and regrows a file through every MHT level: 34 MHT nodes (root, 32 children, one
/// grandchild) down to the inline part and back, checking the storage after each step.
fn shrink_and_grow_across_mht_levels(cache: Option<usize>) {
    let data_nodes = |n: u64| INLINE + NODE * n;
    let deep = data_nodes(96 * 33 + 5);
    let mut ops = vec![
        Op::Write {
            off: 0,
            len: deep as usize,
            seed: 1,
        },
        Op::Flush,
    ];
    let targets = [
        data_nodes(96 * 33 + 1), // last MHT keeps one data slot
        data_nodes(96 * 33),     // grandchild MHT 33 goes: MHT 1 loses its only child
        data_nodes(96 * 33) - 1, // partial last node
        data_nodes(96 * 32 + 7), // MHT 32 becomes the last
        data_nodes(96 * 2),      // two MHT nodes
        data_nodes(97),
        data_nodes(96),
        data_nodes(1) + 5,
        INLINE + 1,
        INLINE,
        100,
        0,
    ];
    for (i, &t) in targets.iter().enumerate() {
        ops.push(Op::SetLen(t));
        ops.push(Op::Flush);
        // Grow a little past the new end (new nodes and slots must start clean), then back.
        ops.push(Op::Write {
            off: t + 5000,
            len: 6000,
            seed: 100 + i as u64,
        });
        ops.push(Op::Flush);
        ops.push(Op::SetLen(t));
        if i % 3 == 0 {
            ops.push(Op::Reopen);
        }
    }
    // From empty straight back to three levels, in one zero-filling set_len, then data at the end.
    ops.push(Op::SetLen(deep));
    ops.push(Op::Write {
        off: deep - 10,
        len: 20,
        seed: 7,
    });
    ops.push(Op::Reopen);
    ops.push(Op::Read {
        off: data_nodes(96 * 33) - 3,
        len: 10_000,
    });
    run_ops(None, &ops, cache).unwrap();
}

#[test]
fn shrink_and_grow_across_mht_levels_default_cache() {
    shrink_and_grow_across_mht_levels(None);
}

#[test]
fn shrink_and_grow_across_mht_levels_small_cache() {
    shrink_and_grow_across_mht_levels(Some(4));
}
