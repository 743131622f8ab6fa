"""Print what mlops-tui has put on this host, as JSON: code bundle, models, Ray processes.

Usage: python -c SRC ROOT NODE   (ROOT may start with ~; NODE names this host's Ray dir)
"""

import json
import os
import sys


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
        "ray": {"pids": len(pids), "node": json.loads(node_file) if node_file else None},
    }
    sys.stdout.write(json.dumps(result))


main()
