"""A client of ward's attested inference service (``ward serve``).

Each connection's TLS handshake verifies the server's RA-TLS evidence (that it verifies, that it
is bound to the TLS key, and that your policy accepts it) before the handshake completes, so a
server your policy refuses never receives a byte of the request: :class:`RefusedError` names the
rule that failed.

    >>> import ward_client
    >>> with ward_client.Client("127.0.0.1:8443", "policy.toml") as c:
    ...     c.classify("cat.jpg", top_k=3)
    ...     c.attest()["workload"]["measurement"]
    [('tiger cat', 0.38...), ('Egyptian cat', 0.36...), ('tabby, tabby cat', 0.16...)]
    '5f0c...'

Exceptions: :class:`WardError` (the base of all), :class:`RefusedError` (the server was refused
in the handshake; nothing was sent) and :class:`ServerError` (an HTTP error answer, ``.status``).
"""

from ._native import Client, RefusedError, ServerError, WardError, __version__

__all__ = ["Client", "WardError", "RefusedError", "ServerError"]
