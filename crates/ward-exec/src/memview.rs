//! [`MemView`]: a small in-memory [`View`] for tests and examples.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use nix::errno::Errno;

use crate::view::{Attr, DirEntry, Handle, Kind, View};

#[derive(Clone)]
enum Node {
    Dir,
    File(Arc<Mutex<Vec<u8>>>, u16),
    Symlink(Vec<u8>),
}

/// An in-memory tree of directories, files and symlinks. Files added with [`MemView::file`]
/// are read-only; when built [`MemView::writable`], the program may also create new files and
/// directories, remove and rename entries, and the caller can read files back with
/// [`MemView::contents`].
#[derive(Clone)]
pub struct MemView {
    nodes: Arc<Mutex<BTreeMap<String, Node>>>,
    mtime: SystemTime,
    writable: bool,
}

impl std::fmt::Debug for MemView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemView")
            .field("paths", &lock(&self.nodes).keys().collect::<Vec<_>>())
            .field("writable", &self.writable)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

impl Default for MemView {
    fn default() -> Self {
        Self::new()
    }
}

impl MemView {
    /// An empty read-only tree (only `/`), every mtime the time of this call.
    pub fn new() -> Self {
        MemView {
            nodes: Arc::new(Mutex::new(BTreeMap::from([("/".to_string(), Node::Dir)]))),
            mtime: SystemTime::now(),
            writable: false,
        }
    }

    /// Lets the program create files and directories and remove and rename entries (the
    /// contents of files added with [`MemView::file`] stay read-only).
    pub fn writable(mut self) -> Self {
        self.writable = true;
        self
    }

    fn add_parents(nodes: &mut BTreeMap<String, Node>, path: &str) {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut dir = String::new();
        for part in &parts[..parts.len().saturating_sub(1)] {
            dir.push('/');
            dir.push_str(part);
            nodes.entry(dir.clone()).or_insert(Node::Dir);
        }
    }

    /// Adds a file (and its parent directories) with permission bits `mode`.
    pub fn file(self, path: &str, contents: impl Into<Vec<u8>>, mode: u16) -> Self {
        let path = normalize(path);
        {
            let mut nodes = lock(&self.nodes);
            Self::add_parents(&mut nodes, &path);
            nodes.insert(
                path,
                Node::File(Arc::new(Mutex::new(contents.into())), mode),
            );
        }
        self
    }

    /// Adds a directory (and its parents).
    pub fn dir(self, path: &str) -> Self {
        let path = normalize(path);
        {
            let mut nodes = lock(&self.nodes);
            Self::add_parents(&mut nodes, &path);
            nodes.insert(path, Node::Dir);
        }
        self
    }

    /// Adds a symlink to `target` (and the link's parent directories).
    pub fn symlink(self, path: &str, target: &str) -> Self {
        let path = normalize(path);
        {
            let mut nodes = lock(&self.nodes);
            Self::add_parents(&mut nodes, &path);
            nodes.insert(path, Node::Symlink(target.as_bytes().to_vec()));
        }
        self
    }

    /// The current contents of the file at `path`, if there is one.
    pub fn contents(&self, path: &str) -> Option<Vec<u8>> {
        match lock(&self.nodes).get(&normalize(path)) {
            Some(Node::File(data, _)) => Some(lock(data).clone()),
            _ => None,
        }
    }

    fn attr(&self, node: &Node) -> Attr {
        match node {
            Node::Dir => Attr::dir(0o755, self.mtime),
            Node::File(data, mode) => Attr::file(lock(data).len() as u64, *mode, self.mtime),
            Node::Symlink(target) => Attr::symlink(target.len() as u64, self.mtime),
        }
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn has_children(nodes: &BTreeMap<String, Node>, path: &str) -> bool {
    let prefix = format!("{path}/");
    nodes
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(p, _)| p.starts_with(&prefix))
}

struct MemHandle {
    data: Arc<Mutex<Vec<u8>>>,
    write: bool,
}

impl Handle for MemHandle {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let data = lock(&self.data);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        let mut data = lock(&self.data);
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start.checked_add(bytes.len()).ok_or(Errno::EFBIG)?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        Ok(bytes.len())
    }

    fn set_len(&self, len: u64) -> Result<(), Errno> {
        if !self.write {
            return Err(Errno::EROFS);
        }
        lock(&self.data).resize(usize::try_from(len).map_err(|_| Errno::EFBIG)?, 0);
        Ok(())
    }
}

impl View for MemView {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        let nodes = lock(&self.nodes);
        nodes.get(path).map(|n| self.attr(n)).ok_or(Errno::ENOENT)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        let nodes = lock(&self.nodes);
        match nodes.get(path) {
            Some(Node::Dir) => {}
            Some(_) => return Err(Errno::ENOTDIR),
            None => return Err(Errno::ENOENT),
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| p.len() > prefix.len() && !p[prefix.len()..].contains('/'))
            .map(|(p, node)| DirEntry {
                name: p[prefix.len()..].to_string(),
                kind: match node {
                    Node::Dir => Kind::Dir,
                    Node::File(..) => Kind::File,
                    Node::Symlink(_) => Kind::Symlink,
                },
            })
            .collect())
    }

    fn read_link(&self, path: &str) -> Result<Vec<u8>, Errno> {
        match lock(&self.nodes).get(path) {
            Some(Node::Symlink(target)) => Ok(target.clone()),
            Some(_) => Err(Errno::EINVAL),
            None => Err(Errno::ENOENT),
        }
    }

    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        let nodes = lock(&self.nodes);
        match nodes.get(path) {
            Some(Node::File(data, _)) => {
                if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
                    return Err(Errno::EACCES);
                }
                Ok(Box::new(MemHandle {
                    data: data.clone(),
                    write: false,
                }))
            }
            Some(Node::Dir) => Err(Errno::EISDIR),
            Some(Node::Symlink(_)) => Err(Errno::ELOOP),
            None => Err(Errno::ENOENT),
        }
    }

    fn create(&self, path: &str, mode: u16, _flags: i32) -> Result<(Attr, Box<dyn Handle>), Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        let mut nodes = lock(&self.nodes);
        if !matches!(nodes.get(parent(path)), Some(Node::Dir)) {
            return Err(Errno::ENOENT);
        }
        if nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        let data = Arc::new(Mutex::new(Vec::new()));
        nodes.insert(path.to_string(), Node::File(data.clone(), mode));
        Ok((
            Attr::file(0, mode, self.mtime),
            Box::new(MemHandle { data, write: true }),
        ))
    }

    fn mkdir(&self, path: &str, _mode: u16) -> Result<Attr, Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        let mut nodes = lock(&self.nodes);
        if !matches!(nodes.get(parent(path)), Some(Node::Dir)) {
            return Err(Errno::ENOENT);
        }
        if nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        nodes.insert(path.to_string(), Node::Dir);
        Ok(Attr::dir(0o755, self.mtime))
    }

    fn remove(&self, path: &str, dir: bool) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        let mut nodes = lock(&self.nodes);
        match (nodes.get(path), dir) {
            (None, _) => return Err(Errno::ENOENT),
            (Some(Node::Dir), false) => return Err(Errno::EISDIR),
            (Some(Node::Dir), true) if has_children(&nodes, path) => return Err(Errno::ENOTEMPTY),
            (Some(Node::File(..) | Node::Symlink(_)), true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        nodes.remove(path);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        let mut nodes = lock(&self.nodes);
        let moving_dir = match nodes.get(from) {
            None => return Err(Errno::ENOENT),
            Some(node) => matches!(node, Node::Dir),
        };
        if !matches!(nodes.get(parent(to)), Some(Node::Dir)) {
            return Err(Errno::ENOENT);
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(Errno::EINVAL);
        }
        match nodes.get(to) {
            Some(Node::Dir) if !moving_dir => return Err(Errno::EISDIR),
            Some(Node::Dir) if has_children(&nodes, to) => return Err(Errno::ENOTEMPTY),
            Some(Node::File(..) | Node::Symlink(_)) if moving_dir => return Err(Errno::ENOTDIR),
            _ => {}
        }
        let prefix = format!("{from}/");
        let moved: Vec<String> = nodes
            .keys()
            .filter(|p| p.as_str() == from || p.starts_with(&prefix))
            .cloned()
            .collect();
        for old in moved {
            if let Some(node) = nodes.remove(&old) {
                nodes.insert(format!("{to}{}", &old[from.len()..]), node);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_direct_children() {
        let view = MemView::new()
            .file("/a/b/c.txt", "c", 0o644)
            .file("/a/d.txt", "d", 0o600)
            .symlink("/a/l", "d.txt")
            .dir("/e");
        let names = |path| {
            let mut names: Vec<_> = view
                .read_dir(path)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.kind))
                .collect();
            names.sort_by(|x, y| x.0.cmp(&y.0));
            names
        };
        assert_eq!(
            names("/"),
            [("a".into(), Kind::Dir), ("e".into(), Kind::Dir)]
        );
        assert_eq!(
            names("/a"),
            [
                ("b".into(), Kind::Dir),
                ("d.txt".into(), Kind::File),
                ("l".into(), Kind::Symlink)
            ]
        );
        assert_eq!(view.read_dir("/a/d.txt").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(view.lookup("/a/x").unwrap_err(), Errno::ENOENT);
        assert_eq!(view.lookup("/a/d.txt").unwrap().mode, 0o600);
        assert_eq!(view.read_link("/a/l").unwrap(), b"d.txt");
    }

    #[test]
    fn files_are_read_only_and_created_files_writable() {
        let view = MemView::new().file("/f", "0123456789", 0o644);
        assert_eq!(view.open("/f", libc::O_WRONLY).err(), Some(Errno::EACCES));
        let handle = view.open("/f", libc::O_RDONLY).unwrap();
        assert_eq!(handle.read_at(8, 10).unwrap(), b"89");
        assert_eq!(handle.read_at(20, 10).unwrap(), b"");
        assert_eq!(view.create("/g", 0o600, 0).err(), Some(Errno::EROFS));

        let view = view.writable();
        let (attr, handle) = view.create("/g", 0o600, 0).unwrap();
        assert_eq!((attr.kind, attr.size, attr.mode), (Kind::File, 0, 0o600));
        assert_eq!(handle.write_at(2, b"xy").unwrap(), 2);
        assert_eq!(view.contents("/g").unwrap(), b"\0\0xy");
        handle.set_len(1).unwrap();
        assert_eq!(view.contents("/g").unwrap(), b"\0");
        assert_eq!(view.create("/g", 0o600, 0).err(), Some(Errno::EEXIST));
        assert_eq!(view.create("/no/g", 0o600, 0).err(), Some(Errno::ENOENT));

        view.mkdir("/d", 0o755).unwrap();
        view.rename("/g", "/d/h").unwrap();
        assert_eq!(view.contents("/d/h").unwrap(), b"\0");
        assert_eq!(view.contents("/g"), None);
        assert_eq!(view.remove("/d", true).err(), Some(Errno::ENOTEMPTY));
        view.rename("/d", "/e").unwrap();
        assert_eq!(view.contents("/e/h").unwrap(), b"\0");
        view.remove("/e/h", false).unwrap();
        view.remove("/e", true).unwrap();
        assert_eq!(view.lookup("/e").err(), Some(Errno::ENOENT));
    }
}
