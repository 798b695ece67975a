"""A client of ward's attested inference service (`ward serve`).

Each connection's TLS handshake verifies the server's RA-TLS evidence against your policy
before anything is sent; a refused server raises RefusedError and never sees the image.
"""

import os
from types import TracebackType
from typing import Any, Dict, List, Optional, Tuple, Type, Union

__version__: str
__all__ = ["Client", "WardError", "RefusedError", "ServerError"]

class WardError(Exception):
    """Any failure of ward_client: an unusable policy, no connection, a timeout, an unexpected
    answer. The message is the whole cause chain, most general first (`a: b: c`)."""

class RefusedError(WardError):
    """The server's evidence did not verify, or your policy refused it, in the TLS handshake:
    nothing was sent."""

    server: str
    """The server, HOST:PORT as given."""
    rule: Optional[str]
    """The policy rule that failed (e.g. "mr_enclave"), or None when the evidence
    itself did not verify."""

class ServerError(WardError):
    """The (verified) server answered with an HTTP error, e.g. 400 for an upload that is not
    an image."""

    status: int
    """The HTTP status."""
    message: str
    """The server's reason."""

class Client:
    """A client of one ward inference service that accepts only the servers your policy
    accepts. Nothing is sent until the first call; every connection is verified in its TLS
    handshake, before any request is sent. Calls block, releasing the GIL; a client shared by
    threads runs their calls one at a time."""

    def __init__(
        self,
        server: str,
        policy: Union[str, "os.PathLike[str]"],
        *,
        pccs: Optional[str] = None,
        cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        timeout: float = 30.0,
    ) -> None:
        """server: "HOST:PORT". policy: your policy file (TOML), read now (WardError naming
        the file if it is unreadable or invalid). pccs: also accept SGX/TDX DCAP evidence,
        with collateral from this PCCS/PCS URL (cached in cache_dir). timeout: seconds for
        connecting, for the handshake and for each answer."""
    @property
    def server(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    def classify(
        self, image: Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"], top_k: int = 5
    ) -> List[Tuple[str, float]]:
        """The top_k most probable classes of the image (its bytes, or the path of a PNG,
        JPEG, GIF or WebP file), most probable first, as (label, probability) pairs.

        Raises RefusedError (the image was not sent), ServerError (e.g. status 400: not an
        image), WardError."""
    def attest(self) -> Dict[str, Any]:
        """What the server's evidence proved and the policy accepted: "tee", the enclave
        identity, "tcb_status", "workload" ({"measurement", "signer", "isv_prod_id",
        "isv_svn", "debug"}); byte strings are hex."""
    def health(self) -> Dict[str, Any]:
        """The server's GET /v1/health answer (model, classes, "stats")."""
    def certificate(self) -> bytes:
        """The server's RA-TLS certificate (DER) of the current session."""
    def close(self) -> None:
        """Ends the session; later calls raise WardError."""
    def __enter__(self) -> "Client": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
