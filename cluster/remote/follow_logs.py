"""Follow a node's Serve log files, as `tail -F` would, for the console's logs screen.

Prints the last LINES lines of every `*.log` file in DIR, then every new line as it is
written, each as `FILE<TAB>LINE`; files that appear later (a replica restarted) are followed
from their start, and a file that was rotated or truncated is read again from its start.
Every POLL seconds at most; a `# TICK` line after each poll that printed nothing lets the
reader know the node is alive. Exits when stdin closes (the SSH channel went away).

Usage: python -c SRC DIR LINES
Standard library only; runs on old Pythons too.
"""

import os
import sys
import threading
import time

POLL = 0.5
TICK_EVERY = 5.0
MAX_LINE = 8192


def _exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


def last_lines(path, count):
    """The last `count` lines of a file and the offset after them."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        start = max(0, end - 64 * 1024)
        fh.seek(start)
        data = fh.read()
    lines = data.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first one is probably cut
    return lines[-count:] if count else [], end


def emit(name, lines, out):
    for line in lines:
        text = line[:MAX_LINE].decode("utf-8", "replace").rstrip("\r")
        out.append("%s\t%s\n" % (name, text))


def main(directory, count):
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    offsets = {}  # path -> (inode, offset)
    partial = {}  # path -> bytes of an unfinished last line
    first = True
    quiet_since = time.monotonic()
    while True:
        out = []
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".log"))
        except OSError as exc:
            names = []
            out.append("# ERROR cannot read %s: %s\n" % (directory, exc))
        for name in names:
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)
                known = offsets.get(path)
                if known is None:
                    if first:
                        lines, end = last_lines(path, count)
                        emit(name, lines, out)
                        offsets[path] = (st.st_ino, end)
                        continue
                    known = (st.st_ino, 0)  # a new file: from its start
                inode, offset = known
                if inode != st.st_ino or st.st_size < offset:
                    offset = 0  # rotated or truncated
                if st.st_size == offset:
                    offsets[path] = (st.st_ino, offset)
                    continue
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = partial.pop(path, b"") + fh.read(1024 * 1024)
                    offset = fh.tell()
                cut = data.rfind(b"\n")
                if cut == -1:
                    partial[path] = data
                else:
                    emit(name, data[:cut].split(b"\n"), out)
                    if cut + 1 < len(data):
                        partial[path] = data[cut + 1 :]
                offsets[path] = (st.st_ino, offset)
            except OSError:
                offsets.pop(path, None)  # gone between listdir and open: seen again if back
        first = False
        now = time.monotonic()
        if not out and now - quiet_since >= TICK_EVERY:
            out.append("# TICK\n")
        if out:
            quiet_since = now
            try:
                sys.stdout.write("".join(out))
                sys.stdout.flush()
            except (BrokenPipeError, OSError):
                os._exit(0)
        time.sleep(POLL)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
