//! The on-disk collateral cache.

use crate::error::{Error, Result};
use crate::fetch::Pccs;
use crate::key::{CollateralKey, Tee};
use crate::shape;
use serde::Deserialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use ward_attest::dcap::{rfc3339, Collateral};
use ward_attest::quote::Quote;

/// A cache file larger than this is not collateral.
const MAX_CACHE_FILE_BYTES: u64 = 64 << 20;

/// The fields of ward-attest's collateral JSON (`Collateral::to_json`) that say when it expires.
#[derive(Deserialize)]
struct CollateralExpiry {
    tcb_info: String,
    qe_identity: String,
    pck_crl: String,
    root_ca_crl: String,
}

/// When collateral stops being current: the earliest `nextUpdate` of its TCB info, QE
/// identity, PCK CRL and root CA CRL, in unix seconds.
///
/// The CRLs count too: a PCK CRL that runs out before the TCB info does makes the whole set
/// unusable for verification, so a cache that looked only at the TCB info and QE identity
/// would serve collateral that no longer verifies.
pub fn next_update(collateral: &Collateral) -> Result<u64> {
    let validity = collateral.validity().map_err(Error::NextUpdate)?;
    Ok(validity.earliest_next_update().next_update)
}

/// When cached collateral JSON stops being current; the TCB info's and QE identity's ids must
/// be `tee`'s.
fn next_update_of_json(json: &str, tee: Tee) -> std::result::Result<u64, String> {
    let c: CollateralExpiry =
        serde_json::from_str(json).map_err(|e| format!("not collateral JSON: {e}"))?;
    let tcb = shape::tcb_info_next_update(&c.tcb_info, tee, None)?;
    let qe = shape::qe_identity_next_update(&c.qe_identity, tee)?;
    let crl = |field: &str, what: &str| {
        let der = hex::decode(field.trim()).map_err(|e| format!("{what} is not hex: {e}"))?;
        shape::crl_next_update(&der).map_err(|e| format!("{what}: {e}"))
    };
    let pck_crl = crl(&c.pck_crl, "PCK CRL")?;
    let root_ca_crl = crl(&c.root_ca_crl, "root CA CRL")?;
    Ok(tcb.min(qe).min(pck_crl).min(root_ca_crl))
}

/// Collateral read from the cache, with when it stops being current.
#[derive(Clone)]
pub struct CachedCollateral {
    /// The collateral.
    pub collateral: Collateral,
    /// The earliest `nextUpdate` of its pieces (see [`next_update`]), unix seconds.
    pub next_update: u64,
}

impl std::fmt::Debug for CachedCollateral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedCollateral")
            .field("fmspc", &hex::encode_upper(self.collateral.fmspc()))
            .field("next_update", &rfc3339(self.next_update))
            .finish_non_exhaustive()
    }
}

/// An on-disk collateral cache: one JSON file (`Collateral::to_json`) per [`CollateralKey`],
/// named like `sgx-00606a000000-platform.json`, written atomically (temporary file, then
/// rename). The directory is created when the first entry is stored.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The per-user default location: `$XDG_CACHE_HOME/ward/collateral`, else
    /// `~/.cache/ward/collateral`; `None` when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("ward/collateral"))
    }

    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `key`'s collateral.
    pub fn path_for(&self, key: &CollateralKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// Reads `key`'s entry, whether current or not. `Ok(None)` if there is none;
    /// [`Error::CacheCorrupt`] if the file is not collateral for `key` (unparsable, for another
    /// TEE or FMSPC, without a readable `nextUpdate`); [`Error::CacheIo`] if it cannot be read.
    pub fn load(&self, key: &CollateralKey) -> Result<Option<CachedCollateral>> {
        let path = self.path_for(key);
        let io_err = |source| Error::CacheIo {
            context: "reading cached collateral",
            path: path.clone(),
            source,
        };
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let mut bytes = Vec::new();
        io::Read::read_to_end(
            &mut io::Read::take(file, MAX_CACHE_FILE_BYTES + 1),
            &mut bytes,
        )
        .map_err(io_err)?;
        let corrupt = |reason: String| Error::CacheCorrupt {
            path: path.clone(),
            reason,
            source: None,
        };
        if bytes.len() as u64 > MAX_CACHE_FILE_BYTES {
            return Err(corrupt(format!("larger than {MAX_CACHE_FILE_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8".into()))?;
        let collateral = Collateral::from_json(&text).map_err(|e| Error::CacheCorrupt {
            path: path.clone(),
            reason: "not usable collateral".into(),
            source: Some(e),
        })?;
        if collateral.fmspc() != key.fmspc {
            return Err(corrupt(format!(
                "holds collateral for FMSPC {}, not {}",
                hex::encode_upper(collateral.fmspc()),
                key.fmspc_hex()
            )));
        }
        let next_update = next_update_of_json(&text, key.tee).map_err(corrupt)?;
        Ok(Some(CachedCollateral {
            collateral,
            next_update,
        }))
    }

    /// Stores `collateral` as `key`'s entry, replacing any other atomically (a temporary
    /// beside it, synced, then renamed; see [`ward_fsio::AtomicFile`]). The directory is created
    /// if missing.
    pub fn store(&self, key: &CollateralKey, collateral: &Collateral) -> Result<()> {
        ward_fsio::write_atomic(self.path_for(key), collateral.to_json().as_bytes(), 0o644)
            .map_err(|source| Error::CacheStore { source })
    }
}

/// Collateral from the cache while it is current, otherwise from the PCCS/PCS (and then
/// cached).
#[derive(Debug, Clone)]
pub struct CachingSource {
    /// Where collateral is fetched from.
    pub pccs: Pccs,
    /// Where it is kept.
    pub cache: Cache,
}

impl CachingSource {
    /// Fetches from `pccs`, keeps in `cache`.
    pub fn new(pccs: Pccs, cache: Cache) -> CachingSource {
        CachingSource { pccs, cache }
    }

    /// The collateral `quote` needs at `now_unix` (seconds, supplied by the caller).
    ///
    /// The cached entry is used while `now_unix` is before its [`next_update`]; otherwise, or
    /// if there is none, or it is unreadable or corrupt (reported with `tracing::warn!`), the
    /// collateral is fetched and the entry replaced. A fetch failure is returned as is: stale
    /// collateral is never served. A failure to write the cache is reported with
    /// `tracing::warn!` and the fetched collateral returned anyway.
    pub fn collateral_for(&self, quote: &Quote, now_unix: u64) -> Result<Collateral> {
        self.collateral_for_key(&CollateralKey::from_quote(quote)?, now_unix)
    }

    /// As [`CachingSource::collateral_for`], for a known key.
    pub fn collateral_for_key(&self, key: &CollateralKey, now_unix: u64) -> Result<Collateral> {
        match self.cache.load(key) {
            Ok(Some(entry)) if now_unix < entry.next_update => {
                tracing::debug!(%key, next_update = %rfc3339(entry.next_update), "collateral from cache");
                return Ok(entry.collateral);
            }
            Ok(Some(entry)) => tracing::debug!(
                %key,
                next_update = %rfc3339(entry.next_update),
                now = %rfc3339(now_unix),
                "cached collateral is due for update; refetching"
            ),
            Ok(None) => tracing::debug!(%key, "no cached collateral; fetching"),
            Err(e) => {
                tracing::warn!("ignoring the collateral cache entry for {key}: {e}; refetching")
            }
        }
        let collateral = self.pccs.fetch_key(key)?;
        match next_update(&collateral) {
            Ok(next) if next <= now_unix => tracing::warn!(
                "{} served collateral for {key} that was due for update at {} (verification time {}); it will not verify — is the PCCS refreshing from Intel?",
                self.pccs.base_url(),
                rfc3339(next),
                rfc3339(now_unix)
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("fetched collateral for {key}: {e}"),
        }
        if let Err(e) = self.cache.store(key, &collateral) {
            tracing::warn!("could not cache collateral for {key}: {e}");
        }
        Ok(collateral)
    }
}

/// A [`ward_attest::DcapEvidenceVerifier`] gets its collateral here: from the cache while it
/// is current, otherwise from the PCCS/PCS.
impl ward_attest::CollateralSource for CachingSource {
    fn collateral_for(
        &self,
        quote: &Quote,
        now: u64,
    ) -> std::result::Result<Collateral, Box<dyn std::error::Error + Send + Sync>> {
        CachingSource::collateral_for(self, quote, now).map_err(Into::into)
    }
}
