#!/usr/bin/env python3
"""Independent reference implementation of Gramine's protected-file format.

Written from the format description only (FORMATS.md §1 in the project's shared notes), not from
ward's Rust code, so that ward's encryptor and decryptor can each be checked against a second,
unrelated implementation:

    pf_reference.py decrypt KEYFILE IN OUT [--path BOUND] [--strict]
    pf_reference.py encrypt KEYFILE IN OUT [--path BOUND]

decrypt reads format 1.0 and 2.0, authenticates every node (metadata, every MHT node, every data
node) against the key and tag held by its parent, checks that the file has exactly the number of
nodes its recorded size needs and, with --path, that the bound path equals the normalised BOUND.
--strict also checks that every byte the format leaves unused is zero (header padding, path tail,
inline-data tail, unused MHT slots, last data node tail), as Gramine leaves them.

encrypt writes format 2.0 with a fresh random metadata nonce and a fresh random key for every node.
BOUND defaults to OUT as given on the command line; either is normalised before binding.

Any failure prints a one-line message on stderr and exits with status 1; OUT is written to a
temporary file next to it and renamed only on success. Needs the `cryptography` package.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
from typing import BinaryIO

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.cmac import CMAC
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write("pf_reference.py: needs the 'cryptography' package (pip install cryptography)\n")
    sys.exit(2)

# --- Constants of the format (FORMATS.md §1) ---------------------------------------------------

NODE = 4096
FILE_ID = struct.pack("<Q", 0x46505F5346415247)  # b"GRAFS_PF"
assert FILE_ID == b"GRAFS_PF"

NONCE_OFF, NONCE_LEN = 10, 32
TAG_OFF, TAG_LEN = 42, 16
FLAGS_OFF = 58  # 2.0 only
ENC_LEN = 3884
ENC_OFF = {1: 58, 2: 59}  # by major version
FLAG_WRITE_PENDING = 0x01

PATH_LEN = 772
INLINE = 3072
# Encrypted part: path 772 · size u64 · root MHT key 16 · root MHT tag 16 · inline data 3072.
SIZE_OFF = PATH_LEN
ROOT_KEY_OFF = SIZE_OFF + 8
ROOT_TAG_OFF = ROOT_KEY_OFF + 16
INLINE_OFF = ROOT_TAG_OFF + 16
assert INLINE_OFF + INLINE == ENC_LEN

DATA_SLOTS = 96  # {key 16, tag 16} per data node
CHILD_SLOTS = 32  # {key 16, tag 16} per child MHT, after the data slots
SLOT = 32

KDF_LABEL = b"SGX-PROTECTED-FS-METADATA-KEY"
ZERO_IV = bytes(12)


class PfError(Exception):
    """Any reason a file is refused."""


# --- Primitives ---------------------------------------------------------------------------------


def metadata_key(wrap_key: bytes, nonce: bytes) -> bytes:
    """AES-128-CMAC(wrap key, u32 1 · label NUL-padded to 64 · nonce 32 · u32 128)."""
    msg = struct.pack("<I", 1) + KDF_LABEL.ljust(64, b"\0") + nonce + struct.pack("<I", 128)
    assert len(msg) == 104
    c = CMAC(algorithms.AES(wrap_key))
    c.update(msg)
    return c.finalize()


def gcm_open(key: bytes, tag: bytes, ct: bytes, what: str) -> bytes:
    try:
        return AESGCM(key).decrypt(ZERO_IV, ct + tag, None)
    except InvalidTag:
        raise PfError(f"{what}: GCM tag mismatch") from None


def gcm_seal(key: bytes, pt: bytes) -> tuple[bytes, bytes]:
    out = AESGCM(key).encrypt(ZERO_IV, pt, None)
    return out[:-16], out[-16:]


# --- Layout ---------------------------------------------------------------------------------------


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def shape(size: int) -> tuple[int, int]:
    """(data nodes, MHT nodes) for a plaintext of `size` bytes."""
    data = ceil_div(max(0, size - INLINE), NODE)
    return data, ceil_div(data, DATA_SLOTS)


def data_phys(d: int) -> int:
    return d + 2 + d // DATA_SLOTS


def mht_phys(m: int) -> int:
    return 1 + 97 * m


def mht_parent(m: int) -> tuple[int, int]:
    return (m - 1) // CHILD_SLOTS, (m - 1) % CHILD_SLOTS


def normalize(path: str) -> str:
    """Lexical normalisation of `./`, `../` and `//`; a relative path stays relative."""
    absolute = path.startswith("/")
    out: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not absolute:
                out.append("..")
            # "/.." is "/"
            continue
        out.append(comp)
    joined = "/".join(out)
    return "/" + joined if absolute else joined


def read_key(path: str) -> bytes:
    with open(path, "rb") as f:
        key = f.read()
    if len(key) != 16:
        raise PfError(f"key file {path!r} holds {len(key)} bytes; a wrap key is exactly 16 raw bytes")
    return key


def read_node(f: BinaryIO, phys: int) -> bytes:
    f.seek(phys * NODE)
    buf = f.read(NODE)
    if len(buf) != NODE:
        raise PfError(f"physical node {phys}: short read")
    return buf


# --- Decrypt --------------------------------------------------------------------------------------


def decrypt(key: bytes, src: BinaryIO, dst: BinaryIO, bound: str | None, strict: bool) -> dict:
    src.seek(0, os.SEEK_END)
    length = src.tell()
    if length == 0 or length % NODE:
        raise PfError(f"file length {length} is not a positive multiple of {NODE}")
    nodes = length // NODE

    hdr = read_node(src, 0)
    if hdr[:8] != FILE_ID:
        raise PfError(f"bad file id {hdr[:8].hex()} (expected 'GRAFS_PF')")
    major, minor = hdr[8], hdr[9]
    if (major, minor) not in ((1, 0), (2, 0)):
        raise PfError(f"unsupported format version {major}.{minor}")
    flags = hdr[FLAGS_OFF] if major == 2 else 0
    if flags & FLAG_WRITE_PENDING:
        raise PfError(f"feature flags 0x{flags:02x}: write pending, file needs recovery")
    if flags:
        raise PfError(f"unknown feature flags 0x{flags:02x}")
    nonce = hdr[NONCE_OFF : NONCE_OFF + NONCE_LEN]
    tag = hdr[TAG_OFF : TAG_OFF + TAG_LEN]
    enc_off = ENC_OFF[major]
    ct = hdr[enc_off : enc_off + ENC_LEN]
    if strict and any(hdr[enc_off + ENC_LEN :]):
        raise PfError("metadata node padding is not zero")

    meta = gcm_open(metadata_key(key, nonce), tag, ct, "metadata node")
    path_field = meta[:PATH_LEN]
    nul = path_field.find(b"\0")
    if nul < 0:
        raise PfError("bound path is not NUL-terminated")
    bound_path = path_field[:nul]
    if strict and any(path_field[nul:]):
        raise PfError("bytes after the bound path's NUL are not zero")
    (size,) = struct.unpack_from("<Q", meta, SIZE_OFF)
    root_key = meta[ROOT_KEY_OFF : ROOT_KEY_OFF + 16]
    root_tag = meta[ROOT_TAG_OFF : ROOT_TAG_OFF + 16]
    inline = meta[INLINE_OFF : INLINE_OFF + INLINE]

    if bound is not None:
        want = normalize(bound).encode()
        if bound_path != want:
            raise PfError(f"path check failed: file is bound to {bound_path!r}, expected {want!r}")

    n_data, n_mht = shape(size)
    expected = 1 + n_mht + n_data
    if nodes != expected:
        raise PfError(f"node count {nodes} does not match size {size} (needs {expected} nodes)")

    if strict and size < INLINE and any(inline[size:]):
        raise PfError("inline data beyond the plaintext size is not zero")
    dst.write(inline[: min(size, INLINE)])

    # MHT plaintexts, opened lazily; each MHT is opened from its parent's child slot.
    mhts: dict[int, bytes] = {}

    def mht(m: int) -> bytes:
        if m in mhts:
            return mhts[m]
        if m == 0:
            k, t = root_key, root_tag
        else:
            p, slot = mht_parent(m)
            pt = mht(p)
            o = DATA_SLOTS * SLOT + slot * SLOT
            k, t = pt[o : o + 16], pt[o + 16 : o + 32]
        pt = gcm_open(k, t, read_node(src, mht_phys(m)), f"MHT node {m} (physical {mht_phys(m)})")
        if strict:
            used_data = min(DATA_SLOTS, n_data - m * DATA_SLOTS)
            if any(pt[used_data * SLOT : DATA_SLOTS * SLOT]):
                raise PfError(f"MHT node {m}: unused data slots are not zero")
            used_children = max(0, min(CHILD_SLOTS, n_mht - (m * CHILD_SLOTS + 1)))
            if any(pt[DATA_SLOTS * SLOT + used_children * SLOT :]):
                raise PfError(f"MHT node {m}: unused child slots are not zero")
        mhts[m] = pt
        return pt

    remaining = size - min(size, INLINE)
    for d in range(n_data):
        m, slot = divmod(d, DATA_SLOTS)
        pt = mht(m)
        o = slot * SLOT
        node_pt = gcm_open(
            pt[o : o + 16],
            pt[o + 16 : o + 32],
            read_node(src, data_phys(d)),
            f"data node {d} (physical {data_phys(d)})",
        )
        take = min(NODE, remaining)
        if strict and any(node_pt[take:]):
            raise PfError(f"data node {d}: bytes beyond the plaintext size are not zero")
        dst.write(node_pt[:take])
        remaining -= take
    assert remaining == 0
    # Every MHT node is the parent of at least one data node, so all were authenticated above.
    assert len(mhts) == n_mht

    return {
        "version": f"{major}.{minor}",
        "size": size,
        "bound_path": bound_path.decode(errors="replace"),
        "nodes": nodes,
    }


# --- Encrypt --------------------------------------------------------------------------------------


def encrypt(key: bytes, src: BinaryIO, dst: BinaryIO, bound: str) -> dict:
    path = normalize(bound).encode()
    if len(path) >= PATH_LEN:
        raise PfError(f"bound path is {len(path)} bytes; at most {PATH_LEN - 1} fit")
    if b"\0" in path:
        raise PfError("bound path contains a NUL byte")

    inline = src.read(INLINE)
    size = len(inline)
    mhts: list[bytearray] = []
    d = 0
    if size == INLINE:
        while True:
            chunk = src.read(NODE)
            if not chunk:
                break
            size += len(chunk)
            m, slot = divmod(d, DATA_SLOTS)
            if slot == 0:
                mhts.append(bytearray(NODE))
            k = os.urandom(16)
            ct, t = gcm_seal(k, chunk.ljust(NODE, b"\0"))
            mhts[m][slot * SLOT : slot * SLOT + SLOT] = k + t
            dst.seek(data_phys(d) * NODE)
            dst.write(ct)
            d += 1
            if len(chunk) < NODE:
                break

    n_data, n_mht = shape(size)
    assert (n_data, n_mht) == (d, len(mhts))
    # MHT nodes children first: a child's key and tag go into its parent's child slot.
    root_key, root_tag = bytes(16), bytes(16)
    for m in reversed(range(n_mht)):
        k = os.urandom(16)
        ct, t = gcm_seal(k, bytes(mhts[m]))
        dst.seek(mht_phys(m) * NODE)
        dst.write(ct)
        if m == 0:
            root_key, root_tag = k, t
        else:
            p, slot = mht_parent(m)
            o = DATA_SLOTS * SLOT + slot * SLOT
            mhts[p][o : o + SLOT] = k + t

    meta = (
        path.ljust(PATH_LEN, b"\0")
        + struct.pack("<Q", size)
        + root_key
        + root_tag
        + inline.ljust(INLINE, b"\0")
    )
    assert len(meta) == ENC_LEN
    nonce = os.urandom(NONCE_LEN)
    ct, t = gcm_seal(metadata_key(key, nonce), meta)
    hdr = FILE_ID + bytes([2, 0]) + nonce + t + bytes([0]) + ct
    hdr = hdr.ljust(NODE, b"\0")
    assert len(hdr) == NODE and hdr[ENC_OFF[2] : ENC_OFF[2] + ENC_LEN] == ct
    dst.seek(0)
    dst.write(hdr)
    nodes = 1 + n_mht + n_data
    dst.truncate(nodes * NODE)
    return {"version": "2.0", "size": size, "bound_path": path.decode(errors="replace"), "nodes": nodes}


# --- CLI ------------------------------------------------------------------------------------------


def atomic_output(out: str):
    """A temporary file next to `out`; returns (file, commit, abort)."""
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".pf_reference.", dir=d)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    f = os.fdopen(fd, "w+b")

    def commit():
        f.close()
        try:
            os.replace(tmp, out)
        except BaseException:
            abort()
            raise

    def abort():
        f.close()
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass

    return f, commit, abort


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    dp = sub.add_parser("decrypt", help="decrypt and fully verify a protected file")
    dp.add_argument("keyfile")
    dp.add_argument("input")
    dp.add_argument("output")
    dp.add_argument("--path", help="expected bound path (normalised before comparing)")
    dp.add_argument("--strict", action="store_true", help="also require unused bytes to be zero")
    ep = sub.add_parser("encrypt", help="encrypt into a format 2.0 protected file")
    ep.add_argument("keyfile")
    ep.add_argument("input")
    ep.add_argument("output")
    ep.add_argument("--path", help="path to bind (default: OUTPUT as given), normalised")
    for p in (dp, ep):
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = ap.parse_args(argv)

    try:
        key = read_key(args.keyfile)
        with open(args.input, "rb") as src:
            out, commit, abort = atomic_output(args.output)
            try:
                if args.cmd == "decrypt":
                    info = decrypt(key, src, out, args.path, args.strict)
                else:
                    bound = args.path if args.path is not None else args.output
                    info = encrypt(key, src, out, bound)
                out.flush()
            except BaseException:
                abort()
                raise
            commit()
    except PfError as e:
        sys.stderr.write(f"pf_reference.py {args.cmd} {args.input}: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"pf_reference.py {args.cmd}: {e}\n")
        return 1
    if not args.quiet:
        print(
            f"{args.cmd}: {args.input} -> {args.output}: format {info['version']}, "
            f"{info['size']} bytes, {info['nodes']} nodes, bound to {info['bound_path']!r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
