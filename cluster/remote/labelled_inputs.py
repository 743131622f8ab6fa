"""Stream an app monitor's labelled rows with their logged inputs, for `models update`.

Run on a node with `python -c` (standard library only): argv REMOTE_DIR CLUSTER APP SINCE_TS.
Reads the monitor's SQLite file (ROOT/monitor/CLUSTER/APP.sqlite) read-only (WAL: the monitor keeps writing meanwhile) and writes one
JSON object per row, `{"id": ..., "ts": LABEL_TS, "y": LABEL, "x": [FEATURES]}`, in blocks of
BLOCK lines each followed by a line holding only the record separator (one read per block
on the other side), then `{"end": true, "rows": N}`. Labels and inputs are written as the
monitor stored them (JSON text), never parsed here. A node without the file, or a monitor
that logs no inputs, says so in one line: `{"missing": "..."}`.
"""

import json
import os
import sqlite3
import sys

BLOCK = 1000
SEPARATOR = "\x1e"
QUERY = (
    "SELECT l.request_id, MIN(l.label_ts), l.label, i.features FROM labelled l "
    "JOIN inputs i ON i.request_id = l.request_id WHERE l.label_ts >= ? "
    "GROUP BY l.request_id ORDER BY MIN(l.label_ts), MIN(l.ts)"
)


def main(argv):
    root = os.path.expanduser(argv[1])
    if not os.path.isabs(root):  # relative to home, as SSH sessions and SFTP see it
        root = os.path.join(os.path.expanduser("~"), root)
    path = os.path.join(os.path.normpath(root), "monitor", argv[2], argv[3] + ".sqlite")
    since = float(argv[4])
    out = sys.stdout
    if not os.path.isfile(path):
        out.write(json.dumps({"missing": "no monitor file on this node"}) + "\n" + SEPARATOR + "\n")
        return 0
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "inputs" not in tables:
        out.write(json.dumps({"missing": "the monitor logs no inputs"}) + "\n" + SEPARATOR + "\n")
        return 0
    rows = 0
    block = []
    for request_id, ts, label, features in db.execute(QUERY, (since,)):
        block.append(
            '{"id": %s, "ts": %r, "y": %s, "x": %s}' % (json.dumps(request_id), ts, label, features)
        )
        rows += 1
        if len(block) >= BLOCK:
            out.write("\n".join(block) + "\n" + SEPARATOR + "\n")
            block = []
    if block:
        out.write("\n".join(block) + "\n" + SEPARATOR + "\n")
    out.write(json.dumps({"end": True, "rows": rows}) + "\n" + SEPARATOR + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
