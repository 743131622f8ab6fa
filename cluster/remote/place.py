"""Verify an uploaded staging copy against the sender's sha256 manifest, then move it into place.

Usage: python -c SRC STAGING FINAL  (expected manifest as JSON on stdin)
Prints {"ok": true} or {"ok": false, "mismatch": [...], "missing": [...], "extra": [...]}.
A mismatch deletes the staging copy and leaves FINAL untouched.
"""

import hashlib
import json
import os
import shutil
import sys


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root):
    if os.path.isfile(root):
        return {"": _sha256(root)}
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root).replace(os.sep, "/")] = _sha256(full)
    return out


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _swap_in(staging, final):
    """Move the old copy aside and the new one in; retried, since two uploaders may share a
    filesystem (NFS home directories) and race for the same path."""
    tag = os.path.basename(staging).rsplit("-", 1)[-1]
    olds = []
    for attempt in range(20):
        old = "%s.old-%s-%d" % (final, tag, attempt)  # a fresh name: renaming onto a full dir fails
        try:
            os.rename(final, old)
            olds.append(old)
        except FileNotFoundError:
            pass
        try:
            os.rename(staging, final)
            break
        except OSError:
            continue  # another uploader put its copy in between: move it aside and retry
    else:
        raise SystemExit("could not move %s into place" % final)
    for old in olds:
        _remove(old)


def main():
    staging, final = sys.argv[1], sys.argv[2]
    expected = json.load(sys.stdin)
    got = manifest(staging) if os.path.exists(staging) else {}
    mismatch = sorted(k for k in expected if k in got and got[k] != expected[k])
    missing = sorted(k for k in expected if k not in got)
    extra = sorted(k for k in got if k not in expected)
    if mismatch or missing or extra:
        _remove(staging)
        result = {"ok": False, "mismatch": mismatch, "missing": missing, "extra": extra}
    else:
        _swap_in(staging, final)
        result = {"ok": True, "files": len(got)}
    sys.stdout.write(json.dumps(result))


main()
