"""ward_client end to end against a real `ward serve` on loopback.

The session fixture builds what `crates/ward/tests/serve_cli.rs` builds, with the `ward` binary
(env WARD_BIN, default <repo>/target/release/ward): a model owner's provisioning server that
releases the encrypted model's key only to the signed service's measurement, and the service
itself (simulated TEE). Each test then talks to the service through the Python package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import ward_client
from ward_client import Client, RefusedError, ServerError, WardError

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "models" / "efficientnet-lite0"
CAT = REPO / "models" / "images" / "chelsea.png"
COFFEE = REPO / "models" / "images" / "coffee.png"

# Bounded waits: one CLI step, and a server until it listens (the service fetches the model's
# key from the provisioning server and loads the model first).
STEP_TIMEOUT = 300
START_TIMEOUT = 180


def ward_bin() -> Path:
    return Path(os.path.abspath(os.environ.get("WARD_BIN", REPO / "target" / "release" / "ward")))


def manifest(port: int, svn: int) -> str:
    return f"""[loader]
entrypoint = "ward:serve"
argv = ["--model", "/model/model.onnx", "--labels", "/model/labels.txt", "--spec", "/app/model.toml"]

[[fs.mounts]]
type = "encrypted"
path = "/model"
uri = "file:encrypted"
key_name = "default"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
isv_prod_id = 3
isv_svn = {svn}
trusted_files = ["file:app/"]

[provision]
servers = ["127.0.0.1:{port}"]
ca_chain = "file:srv/ca.pem"
secrets = [{{ name = "model_key", key_name = "default" }}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ward(cwd: Path, *args: str) -> str:
    """Runs `ward ARGS` in `cwd`; its stdout, or a test failure showing both streams."""
    try:
        out = subprocess.run(
            [str(ward_bin()), *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ward {' '.join(args)} took more than {STEP_TIMEOUT} s")
    if out.returncode != 0:
        pytest.fail(
            f"ward {' '.join(args)} failed ({out.returncode})\n"
            f"stdout: {out.stdout}\nstderr: {out.stderr}"
        )
    return out.stdout


class Child:
    """A `ward` server as a child process; both streams drained into lines by threads."""

    def __init__(self, name: str, cwd: Path, *args: str):
        self.name = name
        self.proc = subprocess.Popen(
            [str(ward_bin()), *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.closed: set[str] = set()
        self.cond = threading.Condition()
        for which, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._drain, args=(which, stream), daemon=True).start()

    def _drain(self, which: str, stream) -> None:
        for line in stream:
            with self.cond:
                self.lines[which].append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.closed.add(which)
            self.cond.notify_all()

    def output(self) -> str:
        with self.cond:
            return "\n".join(f"[{w}] {line}" for w in self.lines for line in self.lines[w])

    def listening(self, which: str, timeout: float = START_TIMEOUT) -> str:
        """The address of the first "listening on ADDR" line on `which`, waiting for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[which]:
                    if "listening on " in line:
                        return line.split("listening on ", 1)[1].split()[0]
                if which in self.closed:
                    self.proc.wait(timeout=10)
                    pytest.fail(
                        f"{self.name} exited ({self.proc.returncode}) before listening:\n"
                        + "\n".join(self.lines["stdout"] + self.lines["stderr"])
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"{self.name} did not listen within {timeout} s:\n{self.output()}")
                self.cond.wait(min(remaining, 1.0))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def client_policy(p: Path, name: str, measurements: list[str]) -> Path:
    """A client policy: this setup's simulated platform, and the given workload measurements."""
    sim_key = next(
        line
        for line in (p / "srv" / "policy.toml").read_text().splitlines()
        if line.startswith("simulated_platform_keys")
    )
    listed = ", ".join(f'"{m}"' for m in measurements)
    path = p / name
    path.write_text(
        f"allow_simulated = true\n{sim_key}\n\n[[identity]]\nname = \"classifier\"\n"
        f"mr_enclave = [{listed}]\nisv_prod_id = 3\nmin_isv_svn = 2\n"
    )
    return path


@dataclass
class Service:
    dir: Path
    server: str
    measurement: str
    other_measurement: str
    good_policy: Path
    other_policy: Path


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory):
    ward = ward_bin()
    if not (ward.is_file() and os.access(ward, os.X_OK)):
        pytest.skip(
            f"no ward binary at {ward}: run `cargo build --release` at the repository root, "
            "or set WARD_BIN to one"
        )
    probe = subprocess.run(
        [str(ward), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip(f"{ward} has no `serve` command (an older build?): {probe.stderr.strip()}")

    p = tmp_path_factory.mktemp("ward-service")
    run_ward(p, "provision", "init", "--dir", "srv")
    run_ward(p, "sign", "keygen", "-o", "signer.pem")
    (p / "encrypted").mkdir()
    (p / "app").mkdir()
    shutil.copy(MODELS / "model.toml", p / "app" / "model.toml")
    for f in ("model.onnx", "labels.txt"):
        run_ward(
            p, "pf", "encrypt", "-w", "srv/secrets/wrap_key",
            "-i", str(MODELS / f), "-o", f"encrypted/{f}",
        )

    port = free_port()

    def sign(name: str, svn: int) -> str:
        (p / f"{name}.toml").write_text(manifest(port, svn))
        out = run_ward(p, "sign", "--key", "signer.pem", "--json", f"{name}.toml")
        return json.loads(out)["measurement"]

    m_serve = sign("serve", 2)
    m_other = sign("other", 3)
    assert m_serve != m_other

    # The model owner releases the key to the service's measurement only.
    client_policy(p, "owner-policy.toml", [m_serve])
    children: list[Child] = []
    try:
        owner = Child(
            "ward provision serve", p, "provision", "serve",
            "--secret", "model_key=srv/secrets/wrap_key",
            "--policy", "owner-policy.toml",
            "--cert", "srv/server.pem",
            "--key", "srv/server-key.pem",
            "--audit-log", "audit.jsonl",
            "--listen", f"127.0.0.1:{port}",
        )
        children.append(owner)
        owner.listening("stderr")
        served = Child(
            "ward serve", p, "serve", "serve.signed.toml",
            "--listen", "127.0.0.1:0",
            "--sim-key", "srv/sim-platform.pem",
            "--max-body", "2000000",
        )
        children.append(served)
        server = served.listening("stdout")
        yield Service(
            dir=p,
            server=server,
            measurement=m_serve,
            other_measurement=m_other,
            good_policy=client_policy(p, "good.toml", [m_serve]),
            other_policy=client_policy(p, "other.toml", [m_other]),
        )
    finally:
        for child in reversed(children):
            child.stop()


@pytest.fixture
def client(service: Service):
    with Client(service.server, service.good_policy, timeout=60) as c:
        yield c


def local_classification(service: Service, image: Path) -> list[tuple[str, float]]:
    """The top 5 of `ward classify --json` on the plain model."""
    out = run_ward(
        service.dir, "classify",
        "--model", str(MODELS / "model.onnx"),
        "--labels", str(MODELS / "labels.txt"),
        "--spec", str(MODELS / "model.toml"),
        "--image", str(image),
        "--json",
    )
    return [(p["label"], p["probability"]) for p in json.loads(out)]


def check_top5(predictions) -> None:
    assert isinstance(predictions, list) and len(predictions) == 5, predictions
    for label, probability in predictions:
        assert isinstance(label, str) and label
        assert isinstance(probability, float) and 0.0 < probability <= 1.0, predictions
    probabilities = [p for _, p in predictions]
    assert probabilities == sorted(probabilities, reverse=True), predictions


def test_classify_from_path_and_bytes_matches_local_classification(service, client):
    from_str = client.classify(str(CAT))
    from_path = client.classify(CAT, top_k=5)
    from_bytes = client.classify(CAT.read_bytes())
    check_top5(from_str)
    assert "cat" in from_str[0][0], from_str
    assert from_path == from_str
    assert from_bytes == from_str
    assert client.classify(bytearray(CAT.read_bytes()), top_k=2) == from_str[:2]
    local = local_classification(service, CAT)
    assert [label for label, _ in from_str] == [label for label, _ in local]
    assert [p for _, p in from_str] == pytest.approx([p for _, p in local], abs=1e-4)


def test_refused_server_gets_nothing(service, client):
    before = client.health()["stats"]["classified"]
    refusing = Client(service.server, service.other_policy, timeout=60)
    with pytest.raises(RefusedError) as refused:
        refusing.classify(CAT)
    message = str(refused.value)
    assert "before sending anything" in message, message
    assert "mr_enclave" in message or "measurement" in message, message
    assert refused.value.server == service.server
    # The policy lists the measurements as `mr_enclave`; that rule refused.
    assert refused.value.rule == "mr_enclave", message
    assert isinstance(refused.value, WardError)
    with pytest.raises(RefusedError):
        refusing.attest()
    # The refused client sent nothing: the service classified nothing more.
    assert client.health()["stats"]["classified"] == before


def test_junk_bytes_are_a_400(client):
    with pytest.raises(ServerError) as answered:
        client.classify(b"this is not an image at all")
    assert answered.value.status == 400
    assert "not an image" in answered.value.message, answered.value.message
    assert "400" in str(answered.value)
    assert isinstance(answered.value, WardError) and not isinstance(answered.value, RefusedError)
    with pytest.raises(ServerError) as answered:
        client.classify(CAT, top_k=0)
    assert answered.value.status == 400
    # The session is still usable.
    check_top5(client.classify(COFFEE))


def test_attest_names_the_signed_measurement(service, client):
    claims = client.attest()
    assert isinstance(claims, dict)
    assert claims["workload"]["measurement"] == service.measurement
    assert claims["workload"]["isv_prod_id"] == 3
    der = client.certificate()
    assert isinstance(der, bytes) and der[:1] == b"\x30"


def test_one_client_shared_by_threads(client):
    expected = client.classify(CAT, top_k=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: client.classify(CAT, top_k=1), range(8)))
    assert results == [expected] * 8


def test_closed_client_refuses_calls(service):
    c = Client(service.server, service.good_policy)
    assert service.server in repr(c)
    c.close()
    c.close()
    with pytest.raises(WardError, match="closed"):
        c.health()


def test_missing_policy_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-policy.toml"
    with pytest.raises(WardError, match=re.escape(str(missing))):
        Client("127.0.0.1:1", missing)
    bad = tmp_path / "bad.toml"
    bad.write_text("allow_simulated = 3\n")
    with pytest.raises(WardError, match=re.escape(str(bad))):
        Client("127.0.0.1:1", str(bad))


def test_arguments_are_checked(tmp_path):
    policy = tmp_path / "any.toml"
    policy.write_text("accept_any_identity = true\n")
    with pytest.raises(ValueError, match="timeout"):
        Client("127.0.0.1:1", policy, timeout=0)
    c = Client("127.0.0.1:1", policy, timeout=5)
    with pytest.raises(TypeError, match="image"):
        c.classify(42)
    with pytest.raises(WardError, match="nothing-here.png"):
        c.classify(tmp_path / "nothing-here.png")
    with pytest.raises(WardError, match="HOST:PORT"):
        Client("no-port", policy).health()
    assert ward_client.__version__


def test_blocking_calls_release_the_gil(tmp_path):
    """A call waiting on the network lets other Python threads run; its timeout is honoured."""
    policy = tmp_path / "any.toml"
    policy.write_text("accept_any_identity = true\n")
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        c = Client("127.0.0.1:%d" % silent.getsockname()[1], policy, timeout=1.5)
        errors: list[Exception] = []

        def call() -> None:
            try:
                c.attest()
            except WardError as e:
                errors.append(e)

        worker = threading.Thread(target=call)
        started = time.monotonic()
        worker.start()
        progressed = 0
        while worker.is_alive():
            if time.monotonic() - started > 0.3:
                progressed += 1
            time.sleep(0.01)
        worker.join()
    assert progressed > 10, "the main thread did not run while the call was waiting"
    assert len(errors) == 1 and "timed out after 1.5s" in str(errors[0]), errors
