//! In-memory files for tmpfs mounts: gone when the VFS is dropped, zeroized when freed.

use super::{VfsError, VfsMetadata};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use zeroize::Zeroizing;

/// File contents shared between the store and open handles; the last holder zeroizes them.
pub(crate) type Bytes = Arc<Zeroizing<Vec<u8>>>;

enum Node {
    Dir,
    File(Bytes),
}

/// Every tmpfs mount's nodes, keyed by normalised workload path. A mount's own path is an
/// implicit directory and never stored.
#[derive(Default)]
pub(crate) struct Tmpfs {
    nodes: RwLock<BTreeMap<String, Node>>,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn not_found(path: &str) -> VfsError {
    VfsError::NotFound {
        path: path.to_string(),
        location: "tmpfs".to_string(),
    }
}

impl Tmpfs {
    // A panic elsewhere while a lock was held cannot leave the map inconsistent (every update is
    // a single insert), so a poisoned lock is simply taken over.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Node>> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Node>> {
        self.nodes.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get_file(&self, path: &str, mount: &str) -> Result<Bytes, VfsError> {
        if path == mount {
            return Err(VfsError::IsADirectory { path: path.into() });
        }
        match self.read().get(path) {
            Some(Node::File(data)) => Ok(data.clone()),
            Some(Node::Dir) => Err(VfsError::IsADirectory { path: path.into() }),
            None => Err(not_found(path)),
        }
    }

    pub(crate) fn stat(&self, path: &str, mount: &str) -> Result<VfsMetadata, VfsError> {
        if path == mount {
            return Ok(VfsMetadata::directory());
        }
        match self.read().get(path) {
            Some(Node::File(data)) => {
                Ok(VfsMetadata::file(data.len() as u64, super::FileKind::Tmpfs))
            }
            Some(Node::Dir) => Ok(VfsMetadata::directory()),
            None => Err(not_found(path)),
        }
    }

    pub(crate) fn list(&self, path: &str, mount: &str) -> Result<Vec<String>, VfsError> {
        let nodes = self.read();
        if path != mount {
            match nodes.get(path) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Err(VfsError::NotADirectory { path: path.into() }),
                None => return Err(not_found(path)),
            }
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }

    /// Checks that `path` can hold a new file: not the mount itself, not a directory, and its
    /// parent is a directory.
    fn check_create(
        nodes: &BTreeMap<String, Node>,
        path: &str,
        mount: &str,
    ) -> Result<(), VfsError> {
        if path == mount || matches!(nodes.get(path), Some(Node::Dir)) {
            return Err(VfsError::IsADirectory { path: path.into() });
        }
        let dir = parent(path);
        if dir.len() >= mount.len() && dir != mount {
            match nodes.get(dir) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Err(VfsError::NotADirectory { path: dir.into() }),
                None => return Err(not_found(dir)),
            }
        }
        Ok(())
    }

    pub(crate) fn prepare(&self, path: &str, mount: &str) -> Result<(), VfsError> {
        Self::check_create(&self.read(), path, mount)
    }

    /// Makes `data` the content of `path`, atomically replacing any earlier file.
    pub(crate) fn commit(
        &self,
        path: &str,
        mount: &str,
        data: Zeroizing<Vec<u8>>,
    ) -> Result<(), VfsError> {
        let mut nodes = self.write();
        Self::check_create(&nodes, path, mount)?;
        nodes.insert(path.to_string(), Node::File(Arc::new(data)));
        Ok(())
    }

    pub(crate) fn mkdir_all(&self, path: &str, mount: &str) -> Result<(), VfsError> {
        let mut nodes = self.write();
        let rel = super::path::strip_mount(path, mount).unwrap_or("");
        let mut cur = if mount == "/" {
            String::new()
        } else {
            mount.to_string()
        };
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            match nodes.get(&cur) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Err(VfsError::NotADirectory { path: cur }),
                None => {
                    nodes.insert(cur.clone(), Node::Dir);
                }
            }
        }
        Ok(())
    }
}
