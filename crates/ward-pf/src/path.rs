//! Path normalisation as Gramine does it before binding or checking a path.
//!
//! Purely lexical: `.` and empty components vanish, `..` removes the previous component, and a
//! relative path stays relative (leading `..` are kept; `/..` is `/`). No file system access, no
//! symlink resolution — the bound path is a name, not a location.

/// Normalises `path` the way Gramine's `get_norm_path` does.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn gramine_cases() {
        assert_eq!(normalize("./data/../data/model.pt"), "data/model.pt");
        assert_eq!(normalize("a//b/./c"), "a/b/c");
        assert_eq!(normalize("/a/../../b"), "/b");
        assert_eq!(normalize("../a/../../b"), "../../b");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("a/b/"), "a/b");
        assert_eq!(normalize("model.pt"), "model.pt");
        assert_eq!(normalize("/tmp/x/./y"), "/tmp/x/y");
    }
}
