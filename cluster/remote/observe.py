"""Print what mlops-tui has put on this host, as JSON: code bundle, models, Ray processes.

Usage: python -c SRC ROOT NODE [NAME=PORT@ADDRESS ...]
  ROOT may start with ~; NODE names this host's Ray dir; each NAME=PORT@ADDRESS is a port our
  Ray will bind (ADDRESS 0.0.0.0 for every interface), reported when something else holds it.
"""

import fnmatch
import hashlib
import json
import os
import socket
import sys
import time

# Leftovers of an interrupted run, as provision/leftovers.py removes them; uploads are counted
# only once older than its grace (2 min) by a margin, so whatever is counted gets removed.
UPLOAD_AGE_S = 180
UPLOADS = ("*.partial-*", "*.old-*-*")
SECRET_TEMP = "*.tmp.[0-9]*"
SECRET_AGE_S = 90  # as provision/leftovers.py removes them: more than a minute old, by a margin


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _models(root):
    out = {}
    base = os.path.join(root, "models")
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for name in names:
        try:
            versions = os.listdir(os.path.join(base, name))
        except OSError:
            continue
        for version in versions:
            meta = _read(os.path.join(base, name, version, "meta.json"))
            if meta is None or ".partial-" in version or ".old-" in version:
                continue
            try:
                out[name + ":" + version] = json.loads(meta).get("sha256")
            except ValueError:
                out[name + ":" + version] = None
    return out


def _keys(root):
    """sha256 of each cluster's keys file (never its content): whether the nodes agree."""
    out = {}
    for path, name, _ in _entries(os.path.join(root, "auth"), 1):
        if not name.endswith(".keys"):
            continue
        try:
            with open(path, "rb") as fh:
                out[name[: -len(".keys")]] = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            out[name[: -len(".keys")]] = None
    return out


CERT_BEGIN = "-----BEGIN CERTIFICATE-----"
CERT_END = "-----END CERTIFICATE-----"


def _tls(root):
    """Per cluster: sha256 of each TLS file, and the node's certificate (its public part
    only: the key beside it in node.pem is never read out)."""
    out = {}
    for path, name, is_dir in _entries(os.path.join(root, "tls"), 1):
        if not is_dir:
            continue
        files = {}
        cert = None
        for file_path, file_name, file_is_dir in _entries(path, 1):
            if file_is_dir or not file_name.endswith(".pem"):
                continue
            try:
                with open(file_path, "rb") as fh:
                    data = fh.read()
            except OSError:
                files[file_name] = None
                continue
            files[file_name] = hashlib.sha256(data).hexdigest()
            if file_name == "node.pem":
                text = data.decode("ascii", "replace")
                start = text.find(CERT_BEGIN)
                end = text.find(CERT_END, start)
                if start >= 0 and end > start:
                    cert = text[start : end + len(CERT_END)] + "\n"
        out[name] = {"files": files, "cert": cert}
    return out


def _leases(root):
    """Each app's lease on this host: who holds it, since when, and the phase it last wrote
    (never its id, which takes a lease over)."""
    out = {}
    for path, name, is_dir in _entries(os.path.join(root, "leases"), 1):
        if is_dir or not name.endswith(".lease"):
            continue
        try:
            with open(path) as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            continue  # torn by a crash: the next operator takes it over
        if isinstance(record, dict):
            record.pop("id", None)
            out[name[: -len(".lease")]] = record
    return out


def _entries(directory, depth):
    """(path, name, is_dir) under `directory`, `depth` levels down at most."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        yield path, name, is_dir
        if is_dir and depth > 1:
            for entry in _entries(path, depth - 1):
                yield entry


def _old(path, now, age=UPLOAD_AGE_S):
    try:
        return now - os.lstat(path).st_mtime > age
    except OSError:
        return False


def _leftovers(root):
    """How many leftovers of interrupted runs the next apply would remove."""
    now = time.time()
    count = 0
    for path, name, _ in _entries(root, 1):
        if name.startswith("wheelhouse.") and any(fnmatch.fnmatch(name, p) for p in UPLOADS):
            count += _old(path, now)
    for sub in ("code", "models"):
        for path, name, _ in _entries(os.path.join(root, sub), 3):
            if any(fnmatch.fnmatch(name, p) for p in UPLOADS):
                count += _old(path, now)
    for sub in ("auth", "code", "ray", "tls"):
        for path, name, is_dir in _entries(os.path.join(root, sub), 2):
            if not is_dir and fnmatch.fnmatch(name, SECRET_TEMP):
                count += _old(path, now, SECRET_AGE_S)
    return count


def _taken(specs):
    """The ports (of NAME=PORT@ADDRESS) that cannot be bound now: another program listens."""
    taken = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        port, _, address = rest.partition("@")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # As Ray's servers do: a port in TIME_WAIT is free, a listening one is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, int(port)))
        except OSError as exc:
            taken.append(
                {
                    "name": name,
                    "port": int(port),
                    "address": address,
                    "error": exc.strerror or str(exc),
                }
            )
        finally:
            sock.close()
    return taken


def _ray_pids(marker):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as fh:
                if marker.encode() in fh.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def main():
    root = os.path.expanduser(sys.argv[1])
    if not os.path.isabs(root):  # relative to home, as SSH sessions and SFTP see it
        root = os.path.join(os.path.expanduser("~"), root)
    root = os.path.normpath(root)
    node = sys.argv[2]
    ray_dir = os.path.join(root, "ray", node)
    node_file = _read(os.path.join(ray_dir, "node.json"))
    pids = _ray_pids(ray_dir + "/")
    result = {
        "root": root,
        "bundle": _read(os.path.join(root, "code", "BUNDLE")),
        "models": _models(root),
        "keys": _keys(root),
        "tls": _tls(root),
        "leftovers": _leftovers(root),
        "leases": _leases(root),
        "ray": {"pids": len(pids), "node": json.loads(node_file) if node_file else None},
        # Our own Ray holds its ports: only a host without it can tell another program's.
        "taken": [] if pids else _taken(sys.argv[3:]),
    }
    sys.stdout.write(json.dumps(result))


main()
