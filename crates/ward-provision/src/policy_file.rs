//! Editing a policy file in place (`ward provision policy add|remove|list`): identities are
//! added and removed as `[[identity]]` tables while every comment, key order and formatting the
//! operator wrote stays as it was.
//!
//! Every edit is checked by loading the edited text as the server would
//! ([`ward_attest::Policy::from_toml`]): an edit that would make the file unloadable is refused
//! and the document is left as it was. Writing the file (atomically) is the caller's job.

use crate::{Error, Result};
use ward_attest::{Identity, Policy, TeeKind};

/// An `[[identity]]` described field by field (as `ward provision policy add`'s flags do), on top
/// of an optional base identity (e.g. the one ward-manifest makes of a signed manifest): each
/// field given here replaces the base's.
#[derive(Debug, Clone, Default)]
pub struct IdentitySpec {
    /// Its name (required, unique in the file).
    pub name: String,
    /// Only evidence from this TEE matches.
    pub tee: Option<TeeKind>,
    /// Hex measurement fields, `(field, value)`; a field given several times accepts each value.
    pub measurements: Vec<(String, String)>,
    /// `FIELD=HEX` pairs as written on a command line, added to `measurements`.
    pub accept: Vec<String>,
    /// SGX ISV_PROD_ID required.
    pub isv_prod_id: Option<u16>,
    /// Lowest SGX ISV_SVN accepted.
    pub min_isv_svn: Option<u16>,
    /// The ward workload's product id required.
    pub workload_isv_prod_id: Option<u16>,
    /// The lowest ward workload SVN accepted.
    pub workload_min_isv_svn: Option<u16>,
}

impl IdentitySpec {
    /// The identity: `base` (if any) with every field given here replacing its own.
    pub fn build(&self, base: Option<Identity>) -> Result<Identity> {
        let err = |problem: String| Error::config("the identity to add", problem, None);
        let mut fields: Vec<(String, Vec<String>)> = Vec::new();
        let pairs = self.measurements.iter().cloned();
        let parsed = self.accept.iter().map(|kv| {
            kv.split_once('=')
                .map(|(f, v)| (f.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| err(format!("{kv:?} is not FIELD=HEX (e.g. rtmr3=…)")))
        });
        for pair in pairs.map(Ok).chain(parsed) {
            let (field, value) = pair?;
            match fields.iter_mut().find(|f| f.0 == field) {
                Some(f) => f.1.push(value),
                None => fields.push((field, vec![value])),
            }
        }
        let policy_err = |e: ward_attest::PolicyError| {
            Error::config("the identity to add", "a field", Some(Box::new(e)))
        };
        let mut id = match base {
            Some(b) => b,
            None => {
                let Some((field, values)) = fields.first() else {
                    return Err(err(
                        "it names no measurement: give a signed manifest, mr_enclave/mr_signer \
                         (SGX), mr_td (TDX) or another FIELD=HEX"
                            .into(),
                    ));
                };
                Identity::accepting(field, &refs(values)).map_err(policy_err)?
            }
        };
        for (field, values) in &fields {
            id = id.accept(field, &refs(values)).map_err(policy_err)?;
        }
        if let Some(t) = self.tee {
            id = id.tee(t);
        }
        if let Some(p) = self.isv_prod_id {
            id = id.isv_prod_id(p);
        }
        if let Some(v) = self.min_isv_svn {
            id = id.min_isv_svn(v);
        }
        if let Some(p) = self.workload_isv_prod_id {
            id = id.workload_isv_prod_id(p);
        }
        if let Some(v) = self.workload_min_isv_svn {
            id = id.workload_min_isv_svn(v);
        }
        Ok(id.named(self.name.clone()))
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A policy file's text, parsed both as a document (to edit it) and as a policy (to know what it
/// means).
#[derive(Debug, Clone)]
pub struct PolicyFile {
    doc: toml_edit::DocumentMut,
    /// `None` only for a new file that has no identity yet.
    policy: Option<Policy>,
    source_name: String,
}

/// What a new policy file starts with.
const NEW_FILE_HEADER: &str = "\
# A ward provisioning policy (docs/PROVISIONING.md lists every key). The strict defaults apply:
# UpToDate hardware only, no debug, no simulated TEE. Any one [[identity]] may match.
";

impl PolicyFile {
    /// Parses `text`, which must load as a policy; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<PolicyFile> {
        let policy =
            Policy::from_toml(text, source_name).map_err(|e| policy_err(source_name, e))?;
        let doc = text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|e| Error::config(source_name, "is not valid TOML", Some(Box::new(e))))?;
        Ok(PolicyFile {
            doc,
            policy: Some(policy),
            source_name: source_name.to_owned(),
        })
    }

    /// A new, strict policy with no identity yet: add one before writing it (its text alone
    /// does not load, since a policy must accept someone).
    pub fn new(source_name: &str) -> PolicyFile {
        PolicyFile {
            doc: toml_edit::DocumentMut::new(),
            policy: None,
            source_name: source_name.to_owned(),
        }
    }

    /// The policy as the server would load it (`None` for a new file with no identity yet).
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Appends `identity` as a new `[[identity]]`. It must be named, and the name unused in the
    /// file; the edited policy must load.
    pub fn add(&mut self, identity: &Identity) -> Result<()> {
        let name = identity.name().filter(|n| !n.is_empty()).ok_or_else(|| {
            self.err("the identity to add has no name; name it (it is what refusals show)")
        })?;
        if self.names().iter().any(|n| n.as_deref() == Some(name)) {
            return Err(self.err(&format!(
                "an [[identity]] named {name:?} is already listed; remove it first or pick \
                 another name"
            )));
        }
        let table: toml_edit::DocumentMut = identity.to_toml().parse().map_err(|e| {
            Error::config(&self.source_name, "the identity to add", Some(Box::new(e)))
        })?;
        let mut edited = self.doc.clone();
        let has_keys = edited.iter().any(|(k, _)| k != "identity");
        let is_new = self.policy.is_none();
        let item = edited
            .entry("identity")
            .or_insert_with(|| toml_edit::Item::ArrayOfTables(Default::default()));
        let Some(array) = item.as_array_of_tables_mut() else {
            return Err(self.err("`identity` is not written as [[identity]] tables"));
        };
        let mut table = table.as_table().clone();
        // A new file starts by saying what it is; every other table follows a blank line.
        let prefix = if is_new && array.is_empty() {
            format!("{NEW_FILE_HEADER}\n")
        } else if array.is_empty() && !has_keys {
            String::new()
        } else {
            "\n".to_owned()
        };
        table.decor_mut().set_prefix(prefix);
        array.push(table);
        self.replace(edited)
    }

    /// Removes the `[[identity]]` named `name`; the edited policy must still load (so the last
    /// identity of a policy without `accept_any_identity` cannot be removed).
    pub fn remove(&mut self, name: &str) -> Result<()> {
        let mut edited = self.doc.clone();
        let array = edited
            .get_mut("identity")
            .and_then(toml_edit::Item::as_array_of_tables_mut);
        let at = array.as_ref().and_then(|a| {
            a.iter()
                .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
        });
        let (Some(array), Some(at)) = (array, at) else {
            return Err(self.err(&format!("no [[identity]] is named {name:?}")));
        };
        array.remove(at);
        if array.is_empty() {
            edited.remove("identity");
        }
        self.replace(edited)
    }

    /// The names of its identities, in order (`None` for an unnamed one).
    pub fn names(&self) -> Vec<Option<String>> {
        self.doc
            .get("identity")
            .and_then(toml_edit::Item::as_array_of_tables)
            .map(|a| {
                a.iter()
                    .map(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        self.doc.to_string()
    }

    /// Takes `edited` only if it loads as a policy.
    fn replace(&mut self, edited: toml_edit::DocumentMut) -> Result<()> {
        let text = edited.to_string();
        let policy = Policy::from_toml(&text, &self.source_name).map_err(|e| {
            Error::config(
                &self.source_name,
                "the edited policy would not load, so nothing was changed",
                Some(Box::new(e)),
            )
        })?;
        self.doc = edited;
        self.policy = Some(policy);
        Ok(())
    }

    fn err(&self, problem: &str) -> Error {
        Error::config(&self.source_name, problem, None)
    }
}

fn policy_err(source_name: &str, e: ward_attest::PolicyError) -> Error {
    Error::config(source_name, "does not load as a policy", Some(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const S: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn sgx(name: &str) -> Identity {
        Identity::accepting("mr_enclave", &[M])
            .unwrap()
            .accept("workload_measurement", &[S])
            .unwrap()
            .min_isv_svn(2)
            .named(name)
    }

    #[test]
    fn add_keeps_the_operators_comments_and_the_result_loads() {
        let text =
            "# keep me\nallowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"] # and me\n\n\
                    [[identity]]\nname = \"v1\" # first\nmr_enclave = \""
                .to_owned()
                + M
                + "\"\nmr_signer = \""
                + S
                + "\"\nworkload_measurement = \""
                + S
                + "\"\n";
        let mut f = PolicyFile::parse(&text, "p.toml").unwrap();
        f.add(&sgx("v2")).unwrap();
        let out = f.to_toml();
        assert!(out.starts_with("# keep me\n"), "{out}");
        assert!(out.contains("# and me"), "{out}");
        assert!(out.contains("name = \"v1\" # first"), "{out}");
        assert_eq!(f.names(), [Some("v1".into()), Some("v2".into())]);
        let p = Policy::from_toml(&out, "out").unwrap();
        assert_eq!(p.identities().len(), 2);
        assert_eq!(p.identities()[1].name(), Some("v2"));
    }

    #[test]
    fn an_edit_that_would_not_load_changes_nothing() {
        let mut f = PolicyFile::new("new.toml");
        assert!(f.policy().is_none());
        // Only the workload layer, on hardware: the loader refuses it.
        let only_workload = Identity::accepting("workload_measurement", &[M])
            .unwrap()
            .named("w");
        let e = f.add(&only_workload).unwrap_err();
        assert!(
            ward_attest::ErrorChain(&e)
                .to_string()
                .contains("names only the ward workload"),
            "{e}"
        );
        assert!(f.names().is_empty());
        f.add(&sgx("v1")).unwrap();
        assert!(
            f.to_toml().starts_with("# A ward provisioning policy"),
            "{}",
            f.to_toml()
        );
        // The last identity cannot go: the policy would accept no one.
        assert!(f.remove("v1").is_err());
        assert_eq!(f.names(), [Some("v1".into())]);
        assert!(f.add(&sgx("v1")).is_err(), "a name used twice");
        assert!(f.add(&sgx("")).is_err(), "an empty name");
        assert_eq!(f.names().len(), 1);
    }

    #[test]
    fn remove_takes_out_exactly_the_named_identity() {
        let mut f = PolicyFile::new("p");
        f.add(&sgx("a")).unwrap();
        f.add(&sgx("b")).unwrap();
        f.add(&sgx("c")).unwrap();
        f.remove("b").unwrap();
        assert_eq!(f.names(), [Some("a".into()), Some("c".into())]);
        assert!(f.remove("b").is_err());
        let p = Policy::from_toml(&f.to_toml(), "p").unwrap();
        assert_eq!(p.identities().len(), 2);
    }

    #[test]
    fn a_spec_overrides_its_base_and_collects_repeated_fields() {
        let w = ward_attest::WorkloadIdentity {
            measurement: [0x11; 32],
            signer: [0x22; 32],
            isv_prod_id: 3,
            isv_svn: 4,
            debug: false,
        };
        let spec = IdentitySpec {
            name: "hw".into(),
            tee: Some(TeeKind::Sgx),
            measurements: vec![("mr_enclave".into(), M.into())],
            accept: vec![format!("mr_enclave={S}")],
            min_isv_svn: Some(2),
            workload_min_isv_svn: Some(9),
            ..IdentitySpec::default()
        };
        let id = spec.build(Some(Identity::of_workload(&w))).unwrap();
        let text = id.to_toml();
        assert!(text.contains("name = \"hw\""), "{text}");
        assert!(text.contains("tee = \"sgx\""), "{text}");
        assert!(
            text.contains(&format!("mr_enclave = [\"{M}\", \"{S}\"]")),
            "{text}"
        );
        assert!(text.contains(&format!("workload_measurement = \"{}\"", "11".repeat(32))));
        assert!(text.contains("workload_isv_prod_id = 3"), "{text}");
        assert!(
            text.contains("workload_min_isv_svn = 9"),
            "the spec overrides: {text}"
        );
        // The result loads as a policy naming both layers.
        let mut f = PolicyFile::new("p");
        f.add(&id).unwrap();
        assert!(f.policy().unwrap().warnings().is_empty());

        // Without a base, the first field starts it; nothing at all is refused.
        assert!(IdentitySpec {
            name: "x".into(),
            ..IdentitySpec::default()
        }
        .build(None)
        .is_err());
        for bad in ["rtmr3", "colour=00", "mr_td=abc"] {
            let e = IdentitySpec {
                name: "x".into(),
                accept: vec![bad.into()],
                ..IdentitySpec::default()
            }
            .build(None)
            .unwrap_err();
            assert!(!ward_attest::ErrorChain(&e).to_string().is_empty(), "{bad}");
        }
    }

    #[test]
    fn bad_fields_are_refused_when_the_identity_is_built() {
        assert!(Identity::accepting("mr_enclave", &["abc"]).is_err());
        assert!(
            Identity::accepting("mr_td", &[M]).is_err(),
            "MRTD is 48 bytes"
        );
        assert!(Identity::accepting("colour", &[M]).is_err());
        assert!(Identity::accepting("mr_enclave", &[]).is_err());
    }
}
