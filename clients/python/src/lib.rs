//! `ward_client`, the Python module: a blocking client of ward's attested inference service
//! (`ward serve`), over the Rust crate `ward-client`.
//!
//! Every connection's TLS handshake verifies the server's RA-TLS evidence and judges it by the
//! caller's policy before the handshake completes, so a server the policy refuses never gets a
//! byte of the request ([`RefusedError`]). Calls release the GIL while they wait on the network.
//! The Python-facing documentation is in the docstrings below, in the package's `__init__.py`
//! and in its type stub `python/ward_client/__init__.pyi`.

use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyTuple};
use pyo3::IntoPyObjectExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use ward_client_rs::ClientError;

pyo3::create_exception!(
    ward_client,
    WardError,
    PyException,
    "Any failure of ward_client: an unusable policy, no connection, a timeout, an unexpected answer.\n\n\
     The message is the whole cause chain, most general first (`a: b: c`)."
);
pyo3::create_exception!(
    ward_client,
    RefusedError,
    WardError,
    "The server's evidence did not verify, or your policy refused it, in the TLS handshake: \
     nothing was sent.\n\n\
     Attributes: `server` (HOST:PORT as given), `rule` (the policy rule that failed, e.g. \
     'mr_enclave', or None when the evidence itself did not verify)."
);
pyo3::create_exception!(
    ward_client,
    ServerError,
    WardError,
    "The (verified) server answered with an HTTP error, e.g. 400 for an upload that is not an \
     image.\n\n\
     Attributes: `status` (the HTTP status, int), `message` (the server's reason)."
);

/// A failure as plain data, made where the GIL is released and raised once it is held again.
enum Failure {
    Refused {
        server: String,
        rule: Option<&'static str>,
        message: String,
    },
    Status {
        status: u16,
        reason: String,
        message: String,
    },
    Other(String),
}

impl Failure {
    fn other(e: &dyn std::error::Error) -> Failure {
        Failure::Other(chain(e))
    }

    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let (err, attributes) = match self {
            Failure::Refused {
                server,
                rule,
                message,
            } => (
                RefusedError::new_err(message),
                vec![
                    ("server", server.into_py_any(py)),
                    ("rule", rule.into_py_any(py)),
                ],
            ),
            Failure::Status {
                status,
                reason,
                message,
            } => (
                ServerError::new_err(message),
                vec![
                    ("status", status.into_py_any(py)),
                    ("message", reason.into_py_any(py)),
                ],
            ),
            Failure::Other(message) => (WardError::new_err(message), Vec::new()),
        };
        let value = err.value(py);
        for (name, v) in attributes {
            if let Err(e) = v.and_then(|v| value.setattr(name, v)) {
                return e;
            }
        }
        err
    }

    /// `e`, with the attributes Python callers use.
    fn client(e: ClientError) -> Failure {
        match &e {
            ClientError::Refused { server, reason } => Failure::Refused {
                server: server.clone(),
                rule: reason.refusal().map(|r| r.rule),
                message: chain(&e),
            },
            ClientError::Status { status, message } => Failure::Status {
                status: *status,
                reason: message.clone(),
                message: chain(&e),
            },
            _ => Failure::other(&e),
        }
    }
}

/// An error and its causes on one line: `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    ward_client_rs::error_chain(e)
}

/// Where fetched DCAP collateral is cached when the caller names no directory (only written
/// when a PCCS is given): `$XDG_CACHE_HOME/ward/collateral`, else `~/.cache/ward/collateral`.
fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".cache"))
        });
    match base {
        Some(base) => base.join("ward").join("collateral"),
        None => PathBuf::from("collateral-cache"),
    }
}

/// What to classify: bytes as given, or a file read once the GIL is released.
enum Image {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Image {
    fn from_python(image: &Bound<'_, PyAny>) -> PyResult<Image> {
        if let Ok(b) = image.cast::<PyBytes>() {
            return Ok(Image::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = image.cast::<PyByteArray>() {
            return Ok(Image::Bytes(b.to_vec()));
        }
        if image.cast::<PyMemoryView>().is_ok() {
            let b = image.py().get_type::<PyBytes>().call1((image,))?;
            return Ok(Image::Bytes(b.cast::<PyBytes>()?.as_bytes().to_vec()));
        }
        match image.extract::<PathBuf>() {
            Ok(path) => Ok(Image::File(path)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "image: give the image's bytes or its path (str or os.PathLike), not {}",
                image.get_type().name()?
            ))),
        }
    }

    fn into_bytes(self) -> Result<Vec<u8>, Failure> {
        match self {
            Image::Bytes(b) => Ok(b),
            Image::File(path) => std::fs::read(&path).map_err(|e| {
                Failure::Other(format!(
                    "reading the image {}: {}",
                    path.display(),
                    chain(&e)
                ))
            }),
        }
    }
}

/// A client of one ward inference service (`ward serve`) that accepts only the servers your
/// policy accepts.
///
/// server: "HOST:PORT" of the service.
/// policy: path (str or os.PathLike) of your policy, the TOML of `ward attest verify --policy`:
///     which workload measurements and signers, which TEE and TCB statuses you accept. It is
///     read here; an unreadable or invalid policy raises WardError naming the file.
/// pccs: also accept SGX/TDX DCAP evidence, with collateral fetched from this PCCS/PCS URL.
///     Without it only simulated evidence can verify (and the policy must allow it).
/// cache_dir: where fetched collateral is cached (default $XDG_CACHE_HOME/ward/collateral or
///     ~/.cache/ward/collateral; written only when pccs is given).
/// timeout: seconds allowed for connecting, for the TLS handshake and for each answer.
///
/// Nothing is sent until the first call. Each call then uses the current TLS session or, when
/// the server closed it, connects again. Every connection is verified in its TLS handshake:
/// the server's RA-TLS certificate must carry evidence that verifies, that is bound to the
/// certificate's key, and that the policy accepts, or the handshake fails with RefusedError
/// and the image is never sent.
///
/// Calls block (releasing the GIL). One client may be shared by threads; its calls then run
/// one at a time. Use it as a context manager, or call close(), to end the session.
///
/// Example:
///     >>> import ward_client
///     >>> with ward_client.Client("127.0.0.1:8443", "policy.toml") as c:
///     ...     c.classify("cat.jpg", top_k=3)
///     [('tiger cat', 0.38...), ('Egyptian cat', 0.36...), ('tabby, tabby cat', 0.16...)]
#[pyclass(module = "ward_client", name = "Client")]
struct PyClient {
    server: String,
    timeout: f64,
    inner: Mutex<Option<ward_client_rs::Client>>,
}

impl PyClient {
    /// Runs `f` on the open client with the GIL released; one call at a time.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(
                &mut ward_client_rs::Client,
                &dyn Fn(ClientError) -> Failure,
            ) -> Result<T, Failure>
            + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match inner.as_mut() {
                Some(client) => f(client, &Failure::client),
                None => Err(Failure::Other(format!(
                    "the client of {} is closed",
                    self.server
                ))),
            }
        })
        .map_err(|e| e.into_pyerr(py))
    }

    /// A JSON value as the Python object `json.loads` makes of it.
    fn json<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (value.to_string(),))
    }
}

#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (server, policy, *, pccs = None, cache_dir = None, timeout = 30.0))]
    fn new(
        py: Python<'_>,
        server: String,
        policy: PathBuf,
        pccs: Option<String>,
        cache_dir: Option<PathBuf>,
        timeout: f64,
    ) -> PyResult<PyClient> {
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(PyValueError::new_err(format!(
                "timeout: give a positive number of seconds, not {timeout}"
            )));
        }
        let step = Duration::try_from_secs_f64(timeout)
            .map_err(|e| PyValueError::new_err(format!("timeout {timeout}: {e}")))?;
        let cache_dir = cache_dir.unwrap_or_else(default_cache_dir);
        let client = py
            .detach(|| {
                let connector = ward_client_rs::Connector::from_policy_file(
                    &policy,
                    pccs.as_deref(),
                    &cache_dir,
                )
                .map_err(Failure::client)?
                .with_timeout(step);
                ward_client_rs::Client::new(&server, connector).map_err(Failure::client)
            })
            .map_err(|e| e.into_pyerr(py))?;
        Ok(PyClient {
            server,
            timeout,
            inner: Mutex::new(Some(client)),
        })
    }

    /// The service, "HOST:PORT" as given.
    #[getter]
    fn server(&self) -> &str {
        &self.server
    }

    /// Seconds allowed for connecting, for the handshake and for each answer.
    #[getter]
    fn timeout(&self) -> f64 {
        self.timeout
    }

    /// Classifies an image on the verified server: its top_k most probable classes, most
    /// probable first, as (label, probability) pairs, probabilities in (0, 1].
    ///
    /// image: the image's bytes (bytes, bytearray or memoryview), or the path (str or
    ///     os.PathLike) of a PNG, JPEG, GIF or WebP file, read here.
    ///
    /// Raises RefusedError if the server is refused in the handshake (the image is not sent),
    /// ServerError with .status for an HTTP error answer (400 for bytes that are not an image,
    /// 413 for an upload above the server's limit), WardError for anything else.
    #[pyo3(signature = (image, top_k = 5))]
    fn classify(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        top_k: usize,
    ) -> PyResult<Vec<(String, f64)>> {
        let image = Image::from_python(image)?;
        let predictions = self.call(py, |client, fail| {
            let bytes = image.into_bytes()?;
            client.classify(&bytes, top_k).map_err(fail)
        })?;
        Ok(predictions
            .into_iter()
            .map(|p| (p.label, f64::from(p.probability)))
            .collect())
    }

    /// Verifies the server (connecting if there is no session) and returns what its evidence
    /// proved and the policy accepted, as a dict: "tee", the enclave identity ("mr_enclave",
    /// "mr_signer", ...), "tcb_status", and "workload" (the ward manifest it runs:
    /// "measurement", "signer", "isv_prod_id", "isv_svn", "debug"); byte strings are hex.
    ///
    /// Raises RefusedError if the policy refuses the server.
    fn attest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let claims = self.call(py, |client, fail| {
            let claims = client.attest().map_err(fail)?;
            serde_json::to_value(&claims)
                .map_err(|e| Failure::Other(format!("encoding the claims as JSON: {e}")))
        })?;
        Self::json(py, &claims)
    }

    /// The verified server's GET /v1/health answer as a dict (its model, its classes and
    /// "stats", e.g. stats["classified"]).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let health = self.call(py, |client, fail| client.health().map_err(fail))?;
        Self::json(py, &health)
    }

    /// The server's RA-TLS certificate (DER bytes) of the current session, connecting (and
    /// verifying) if there is none.
    fn certificate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let der = self.call(py, |client, fail| client.certificate().map_err(fail))?;
        Ok(PyBytes::new(py, &der))
    }

    /// Ends the session; later calls raise WardError. Closing twice is harmless.
    fn close(&self, py: Python<'_>) {
        // Waits for a call in progress on another thread; the GIL is released meanwhile.
        py.detach(|| {
            let client = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
            drop(client);
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let open = self.inner.try_lock().map(|c| c.is_some()).unwrap_or(true);
        format!(
            "ward_client.Client({:?}{})",
            self.server,
            if open { "" } else { ", closed" }
        )
    }
}

/// The native part of the `ward_client` package (see its `__init__.py`).
#[pymodule]
#[pyo3(name = "_native")]
fn ward_client(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyClient>()?;
    m.add("WardError", py.get_type::<WardError>())?;
    m.add("RefusedError", py.get_type::<RefusedError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
