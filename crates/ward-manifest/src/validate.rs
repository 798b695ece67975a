//! Rules that span several keys, checked after the schema has parsed.

use crate::error::{key_string, locate, Problem, Seg};
use crate::schema::{Manifest, MountType};
use std::collections::{BTreeMap, BTreeSet};

fn k(s: &str) -> Seg {
    Seg::Key(s.to_owned())
}

struct Problems<'t> {
    text: Option<&'t str>,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn push(&mut self, path: Vec<Seg>, message: impl Into<String>) {
        self.list.push(Problem {
            line: self.text.and_then(|t| locate(t, &path)),
            key: key_string(&path),
            message: message.into(),
        });
    }
}

/// Checks `m`; `text` (the TOML it came from) lets problems name their line.
pub(crate) fn check(m: &Manifest, text: Option<&str>) -> Vec<Problem> {
    let mut p = Problems {
        text,
        list: Vec::new(),
    };
    let mounts = |i: usize, key: &str| vec![k("fs"), k("mounts"), Seg::Index(i), k(key)];

    // One workload: a built-in or a program, never both; a program's options only with one.
    match (&m.libos, &m.loader.entrypoint) {
        (Some(_), Some(_)) => p.push(
            vec![k("loader"), k("entrypoint")],
            "name either a built-in (loader.entrypoint = \"ward:NAME\") or your program \
             ([libos] entrypoint = \"/path\"), not both",
        ),
        (None, None) => p.push(
            vec![k("loader")],
            "no workload: set loader.entrypoint = \"ward:NAME\" for a built-in, or [libos] \
             entrypoint = \"/usr/bin/python3\" for your own program",
        ),
        _ => {}
    }
    if m.libos.is_none() && m.network.is_some() {
        p.push(
            vec![k("network")],
            "[network] is for a program ([libos] entrypoint); built-ins use no network",
        );
    }
    if m.libos.is_none() && m.fs.start_dir.is_some() {
        p.push(
            vec![k("fs"), k("start_dir")],
            "fs.start_dir is the working directory of a program ([libos] entrypoint); built-ins \
             take none",
        );
    }
    if let Some(libos) = &m.libos {
        let covered = |path: &crate::schema::WorkloadPath| {
            m.fs.mounts.iter().any(|mt| mt.path.contains(path))
        };
        if !m
            .fs
            .mounts
            .iter()
            .filter(|mt| mt.path.contains(&libos.entrypoint))
            .max_by_key(|mt| mt.path.as_str().len())
            .is_some_and(|mt| mt.kind == MountType::Chroot)
        {
            p.push(
                vec![k("libos"), k("entrypoint")],
                format!(
                    "{} must be under a chroot mount (and a trusted file), e.g. [[fs.mounts]] \
                     path = \"/usr\" uri = \"file:/usr\"",
                    libos.entrypoint
                ),
            );
        }
        if let Some(dir) = &m.fs.start_dir {
            if !covered(dir) {
                p.push(
                    vec![k("fs"), k("start_dir")],
                    format!("{dir} is under no mount; the program could not start there"),
                );
            }
        }
    }

    // Mounts: one per path, the right fields for their type.
    let mut seen = BTreeMap::new();
    for (i, mount) in m.fs.mounts.iter().enumerate() {
        if let Some(first) = seen.insert(mount.path.clone(), i) {
            p.push(
                mounts(i, "path"),
                format!(
                    "{} is already mounted by fs.mounts[{first}]; each path is mounted once",
                    mount.path
                ),
            );
        }
        match mount.kind {
            MountType::Chroot | MountType::Encrypted if mount.uri.is_none() => p.push(
                mounts(i, "type"),
                format!(
                    "a {} mount needs uri = \"file:HOST_PATH\" (the host directory it shows at {})",
                    mount.kind, mount.path
                ),
            ),
            MountType::Tmpfs if mount.uri.is_some() => p.push(
                mounts(i, "uri"),
                "a tmpfs mount lives in memory and takes no uri",
            ),
            _ => {}
        }
        if mount.kind != MountType::Encrypted && mount.key_name.is_some() {
            p.push(
                mounts(i, "key_name"),
                format!(
                    "only encrypted mounts take a key_name (this one is {})",
                    mount.kind
                ),
            );
        }
    }

    // Pinned files live under an encrypted mount.
    let mut pinned = BTreeSet::new();
    for (i, pin) in m.fs.pinned.iter().enumerate() {
        let path = vec![k("fs"), k("pinned"), Seg::Index(i), k("path")];
        let mount =
            m.fs.mounts
                .iter()
                .filter(|mt| mt.path.contains(&pin.path))
                .max_by_key(|mt| mt.path.as_str().len());
        match mount {
            Some(mt) if mt.kind == MountType::Encrypted && mt.path != pin.path => {}
            Some(mt) if mt.kind == MountType::Encrypted => p.push(
                path,
                format!("{} is the mount itself; pin a file under it", pin.path),
            ),
            Some(mt) => p.push(
                path,
                format!(
                    "{} is under the {} mount {}; only protected files (under an encrypted \
                     mount) are pinned — trusted files are already checked by hash",
                    pin.path, mt.kind, mt.path
                ),
            ),
            None => p.push(
                path,
                format!(
                    "{} is under no mount; add an encrypted mount covering it",
                    pin.path
                ),
            ),
        }
        if !pinned.insert(pin.path.clone()) {
            p.push(
                vec![k("fs"), k("pinned"), Seg::Index(i), k("path")],
                format!("{} is pinned twice", pin.path),
            );
        }
    }

    // Keys for encrypted mounts come from provisioning, or (development only) from the
    // manifest itself; each key from exactly one place, so a dev key never shadows a real one.
    let provisioned: BTreeSet<&str> = m
        .provision
        .iter()
        .flat_map(|pr| pr.secrets.iter())
        .filter_map(|s| s.key_name.as_deref())
        .collect();
    let dev = |table: &str, name: &str| vec![k("fs"), k(table), k(name)];
    for name in m.fs.insecure_keys.keys() {
        if m.fs.insecure_key_files.contains_key(name) {
            p.push(
                dev("insecure__key_files", name),
                format!(
                    "key {name:?} is given twice, in fs.insecure__keys and fs.insecure__key_files; \
                     keep one"
                ),
            );
        }
    }
    for (table, names) in [
        (
            "insecure__keys",
            m.fs.insecure_keys.keys().collect::<Vec<_>>(),
        ),
        (
            "insecure__key_files",
            m.fs.insecure_key_files.keys().collect::<Vec<_>>(),
        ),
    ] {
        for name in names {
            if name.is_empty() {
                p.push(dev(table, name), "a key name may not be empty");
            } else if provisioned.contains(name.as_str()) {
                p.push(
                    dev(table, name),
                    format!(
                        "key {name:?} is both a development key (fs.{table}) and provisioned \
                         ([[provision.secrets]] key_name = {name:?}); a provisioned key must \
                         never be replaced by one the host can read: remove one"
                    ),
                );
            }
        }
    }
    if let Some(limit) = m.fs.whole_read_limit {
        if limit.0 == 0 || limit.0 > crate::schema::MAX_WHOLE_READ_LIMIT {
            p.push(
                vec![k("fs"), k("whole_read_limit")],
                format!(
                    "{limit} is not a whole-read limit: give 1 byte to {} (e.g. \"2G\")",
                    crate::schema::Size(crate::schema::MAX_WHOLE_READ_LIMIT)
                ),
            );
        }
    }
    let provided: BTreeSet<&str> = provisioned
        .iter()
        .copied()
        .chain(m.fs.insecure_keys.keys().map(String::as_str))
        .chain(m.fs.insecure_key_files.keys().map(String::as_str))
        .collect();
    for (i, mount) in m.fs.mounts.iter().enumerate() {
        if mount.kind == MountType::Encrypted && !provided.contains(mount.key_name()) {
            let how = if m.provision.is_none() {
                "there is no [provision] section to fetch it; add one with a \
                 [[provision.secrets]] entry whose key_name is"
                    .to_owned()
            } else {
                "no [[provision.secrets]] entry installs it; add one with key_name =".to_owned()
            };
            p.push(
                mounts(
                    i,
                    if mount.key_name.is_some() {
                        "key_name"
                    } else {
                        "type"
                    },
                ),
                format!(
                    "encrypted mount {} needs the key {:?}, but {how} {:?}",
                    mount.path,
                    mount.key_name(),
                    mount.key_name()
                ),
            );
        }
    }

    if let Some(pr) = &m.provision {
        // The table's servers and CA serve every secret that names neither of its own.
        let uses_table: Vec<&str> = pr
            .secrets
            .iter()
            .filter(|s| s.servers.is_none() && s.ca_chain.is_none())
            .map(|s| s.name.as_str())
            .collect();
        match (pr.servers.is_empty(), &pr.ca_chain) {
            (false, None) => p.push(
                vec![k("provision"), k("servers")],
                "provision.servers needs the CA their certificates chain to: add ca_chain = \
                 \"file:ca.pem\"",
            ),
            (true, Some(_)) => p.push(
                vec![k("provision"), k("ca_chain")],
                "provision.ca_chain is the CA of provision.servers; list at least one server, \
                 e.g. servers = [\"localhost:4433\"]",
            ),
            (true, None) if !uses_table.is_empty() => p.push(
                vec![k("provision"), k("servers")],
                format!(
                    "secret {:?} names no servers of its own, so [provision] needs servers = \
                     [\"HOST:PORT\", …] and ca_chain = \"file:ca.pem\" (or give the secret its \
                     owner's servers and ca_chain)",
                    uses_table[0]
                ),
            ),
            _ => {}
        }
        let host_port = |server: &str| {
            server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        };
        for (i, server) in pr.servers.iter().enumerate() {
            if !host_port(server) {
                p.push(
                    vec![k("provision"), k("servers"), Seg::Index(i)],
                    format!("{server:?} is not HOST:PORT"),
                );
            }
        }
        for (i, s) in pr.secrets.iter().enumerate() {
            let at = |key: &str| vec![k("provision"), k("secrets"), Seg::Index(i), k(key)];
            // Half an owner would silently mix one owner's servers with another's CA.
            match (&s.servers, &s.ca_chain) {
                (Some(_), None) => p.push(
                    at("servers"),
                    format!(
                        "secret {:?} names its owner's servers but not her CA; add ca_chain = \
                         \"file:OWNER-CA.pem\" to it, or remove servers to use [provision]'s",
                        s.name
                    ),
                ),
                (None, Some(_)) => p.push(
                    at("ca_chain"),
                    format!(
                        "secret {:?} names its owner's CA but not her servers; add servers = \
                         [\"HOST:PORT\"] to it, or remove ca_chain to use [provision]'s",
                        s.name
                    ),
                ),
                _ => {}
            }
            if let Some(servers) = &s.servers {
                if servers.is_empty() {
                    p.push(
                        at("servers"),
                        "list at least one server, e.g. [\"localhost:4433\"]",
                    );
                }
                for (j, server) in servers.iter().enumerate() {
                    if !host_port(server) {
                        let mut path = at("servers");
                        path.push(Seg::Index(j));
                        p.push(path, format!("{server:?} is not HOST:PORT"));
                    }
                }
            }
        }
        if pr.secrets.is_empty() {
            p.push(
                vec![k("provision"), k("secrets")],
                "list the secrets to fetch: [[provision.secrets]] name = \"…\", key_name = \"…\"",
            );
        }
        let mut keys = BTreeSet::new();
        let mut envs = BTreeSet::new();
        for (i, s) in pr.secrets.iter().enumerate() {
            let at = |key: &str| vec![k("provision"), k("secrets"), Seg::Index(i), k(key)];
            if s.name.is_empty() {
                p.push(at("name"), "a secret needs a name");
            }
            match (&s.key_name, &s.env) {
                (Some(_), Some(_)) => p.push(
                    at("env"),
                    "a secret becomes either a key (key_name) or a variable (env), not both",
                ),
                (None, None) => p.push(
                    at("name"),
                    format!(
                        "secret {:?} goes nowhere; give key_name = \"…\" (a wrap key for \
                         encrypted mounts) or env = \"VAR\"",
                        s.name
                    ),
                ),
                _ => {}
            }
            if let Some(key) = &s.key_name {
                if key.is_empty() {
                    p.push(at("key_name"), "key_name may not be empty");
                } else if !keys.insert(key.as_str()) {
                    p.push(at("key_name"), format!("key {key:?} is installed twice"));
                }
            }
            if let Some(env) = &s.env {
                if !envs.insert(env.as_str()) {
                    p.push(at("env"), format!("variable {env} is installed twice"));
                } else if m.loader.env.contains_key(env) {
                    p.push(
                        at("env"),
                        format!("variable {env} is also set in [loader.env]; keep one"),
                    );
                }
            }
        }
    }
    p.list
}
