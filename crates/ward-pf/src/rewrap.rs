//! Key rotation in O(1): node keys live under the metadata, so re-encrypting node 0 under the new
//! wrap key re-keys the whole file, whatever its size.

use crate::crypto::{KeyRng, WrapKey};
use crate::error::{io, Error, Result};
use crate::layout::NODE_SIZE;
use crate::node::{MetadataNode, MhtNode};
use crate::storage::{Source, Storage};
use crate::stream::{open_metadata, FileInfo};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Re-encrypts the metadata node of `storage` from `old` to `new` (format 2.0 afterwards).
/// Checks the old key, the bound path if `expected_path` is given, and the node count first.
pub fn rewrap<S: Storage + ?Sized>(
    storage: &mut S,
    old: &WrapKey,
    new: &WrapKey,
    expected_path: Option<&str>,
) -> Result<FileInfo> {
    let opened = open_metadata(&*storage, old, expected_path)?;
    let node = opened.meta.encrypt(new, &mut KeyRng::from_os()?);
    storage
        .write_all_at(&node.to_bytes()[..], 0)
        .map_err(io("writing the metadata node"))?;
    storage.sync().map_err(io("syncing the file"))?;
    let mut info = opened.info();
    info.version = node.version;
    Ok(info)
}

/// The journal an in-place rewrap keeps beside the file while node 0 is being replaced.
pub fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".ward-rewrap");
    PathBuf::from(name)
}

/// Rewraps the file at `path` in place, crash-safely.
///
/// The new metadata node is first written and synced to a journal beside the file, then over
/// node 0, then the journal is removed. A journal left by an interrupted run is resolved from the
/// state of node 0: if node 0 still opens under `old`, the journal was never applied (or is stale,
/// the file having changed since) and is discarded before rewrapping afresh; if node 0 already
/// opens under `new`, the rewrap happened and the journal is discarded; only if node 0 opens under
/// neither key (a torn write of node 0) is the journal written over it, and then only if the
/// journal authenticates under `new` and matches the file's MHT root and node count. The journal
/// holds only the new metadata, never the old one, so a leftover journal keeps no old key useful.
pub fn rewrap_in_place(
    path: &Path,
    old: &WrapKey,
    new: &WrapKey,
    expected_path: Option<&str>,
) -> Result<FileInfo> {
    let journal = journal_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io("opening the file"))?;
    if journal.exists() {
        let under_old = open_metadata(&file, old, None);
        let under_new = open_metadata(&file, new, None);
        match (under_old, under_new) {
            (Ok(_), _) => remove_journal(&journal)?,
            (Err(_), Ok(_)) => {
                remove_journal(&journal)?;
                return info_checked(&file, new, expected_path);
            }
            (Err(_), Err(_)) => {
                let node = read_journal(&journal, new).ok_or_else(|| Error::Journal {
                    journal: journal.display().to_string(),
                    what: "does not authenticate under the new key, and the file opens under neither key; its metadata may be damaged",
                })?;
                let opened = journal_matches(&file, &node, new, expected_path).map_err(|_| {
                    Error::Journal {
                        journal: journal.display().to_string(),
                        what: "does not match the file's nodes, and the file opens under neither key; its metadata may be damaged",
                    }
                })?;
                write_node0(&file, &node)?;
                remove_journal(&journal)?;
                return Ok(opened);
            }
        }
    }

    let opened = open_metadata(&file, old, expected_path)?;
    let node = opened.meta.encrypt(new, &mut KeyRng::from_os()?);
    let bytes = node.to_bytes();
    {
        let mut j = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&journal)
            .map_err(io("creating the rewrap journal"))?;
        j.write_all(&bytes[..])
            .and_then(|_| j.sync_all())
            .map_err(io("writing the rewrap journal"))?;
    }
    sync_dir(path)?;
    write_node0(&file, &node)?;
    remove_journal(&journal)?;
    let mut info = opened.info();
    info.version = node.version;
    Ok(info)
}

fn info_checked(file: &File, key: &WrapKey, expected_path: Option<&str>) -> Result<FileInfo> {
    Ok(open_metadata(file, key, expected_path)?.info())
}

/// Checks a journalled metadata node against the file: node count for its size, the bound path,
/// and the root MHT node authenticating under the key and tag it records.
fn journal_matches(
    file: &File,
    node: &MetadataNode,
    key: &WrapKey,
    expected_path: Option<&str>,
) -> Result<FileInfo> {
    let image = WithNode0 {
        node0: node.to_bytes(),
        file,
    };
    let opened = open_metadata(&image, key, expected_path)?;
    if opened.shape.data_nodes > 0 {
        let mut root = Box::new([0u8; NODE_SIZE]);
        Source::read_exact_at(file, &mut root[..], NODE_SIZE as u64)
            .map_err(io("reading the root MHT node"))?;
        MhtNode::open(root, &opened.meta.root).ok_or(Error::NodeAuthentication {
            node: crate::layout::NodeId::Mht { index: 0 },
        })?;
    }
    Ok(opened.info())
}

/// The file as it would be with `node0` written over its first node.
struct WithNode0<'f> {
    node0: Box<[u8; NODE_SIZE]>,
    file: &'f File,
}

impl Source for WithNode0<'_> {
    fn byte_len(&self) -> std::io::Result<u64> {
        Source::byte_len(self.file)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset == 0 && buf.len() == NODE_SIZE {
            buf.copy_from_slice(&self.node0[..]);
            Ok(())
        } else {
            Source::read_exact_at(self.file, buf, offset)
        }
    }
}

fn read_journal(journal: &Path, new: &WrapKey) -> Option<MetadataNode> {
    let bytes = std::fs::read(journal).ok()?;
    let arr: &[u8; NODE_SIZE] = bytes.as_slice().try_into().ok()?;
    let node = MetadataNode::parse(arr).ok()?;
    node.decrypt(new).ok()?;
    Some(node)
}

fn remove_journal(journal: &Path) -> Result<()> {
    std::fs::remove_file(journal).map_err(io("removing the rewrap journal"))?;
    sync_dir(journal)
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the directory"))
}

fn write_node0(file: &File, node: &MetadataNode) -> Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(&node.to_bytes()[..], 0)
        .and_then(|_| file.sync_all())
        .map_err(io("writing the metadata node"))
}
