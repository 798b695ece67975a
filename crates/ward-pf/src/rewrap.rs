//! Key rotation in O(1): node keys live under the metadata, so re-encrypting node 0 under the new
//! wrap key re-keys the whole file, whatever its size.

use crate::crypto::{KeyRng, WrapKey};
use crate::error::{io, Error, Result};
use crate::layout::NODE_SIZE;
use crate::node::MetadataNode;
use crate::storage::Storage;
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
/// node 0, then the journal is removed. If a previous run was interrupted, its journal is
/// completed (when it authenticates under `new`) or discarded (when it is incomplete and the file
/// still opens under `old`). The journal holds only the new metadata, never the old one, so a
/// leftover journal does not keep the old key useful.
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
        if let Some(node) = read_journal(&journal, new) {
            // Roll forward an interrupted rewrap.
            write_node0(&file, &node)?;
            remove_journal(&journal)?;
            let opened = open_metadata(&file, new, expected_path)?;
            return Ok(opened.info());
        }
        if open_metadata(&file, old, None).is_err() {
            return Err(Error::Journal {
                journal: journal.display().to_string(),
                what: "authenticates under neither key; the file's metadata may be damaged",
            });
        }
        // The journal was never completed, so node 0 was never touched: discard it.
        remove_journal(&journal)?;
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
