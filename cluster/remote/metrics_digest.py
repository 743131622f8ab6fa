"""A Ray node's Serve metrics, cut down on the node, streamed to the collector.

Every INTERVAL seconds: fetch Ray's /metrics page on this host, keep the few samples the
collector reads, sum away the labels it never reads (worker ids, session, and the replica for
latency histograms), and write the result to stdout as Prometheus text ending in `# EOF`.

Why on the node: with ten replicas Ray's page is 1.7 MB and this is a few KB, so one console
follows hundreds of nodes. Ray's exporter ignores `?name[]=` filters, so the cut happens here.
Counters stay monotonic when a replica restarts: its reset is seen here, per series, and
counted from zero.

Runs with the host's Ray interpreter (prometheus_client comes with Ray; it parses every series,
once). Exits when stdin closes: the SSH channel or the collector went away. Digests of one
node (a console and a swap following it at once) ask at the same wall-clock moments and share
one fetch of the page through a private file, so Ray renders it once per interval.

With MONITOR_URLs (an app's monitor on this node, one per app), each interval also asks each
monitor and writes its answer on one line, `# MONITOR i JSON` (or `# MONITOR i ERROR reason`),
before the `# EOF`: the console then makes no HTTP request per node per second. Their
`Authorization` headers come as a JSON list on stdin's first line, never in argv; a later
line replaces them (a key was rotated).

Usage: python -c SRC METRICS_URL INTERVAL_S [--every=N [--ca=FILE [--cert=FILE]] MONITOR_URL ...]
(--every=N: the monitors are asked every Nth interval, so a big fleet's answers, which the one
console parses, arrive at a bounded rate. --ca: https monitors are verified against these CAs
only; --cert: our client certificate and key, for proxies that ask for one. A relative FILE
is relative to home, as the host's remote_dir.)
A failed fetch writes `# ERROR reason` before its `# EOF`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import random
import ssl
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# sample name -> the labels the collector reads; samples differing only in others are summed.
KEEP = {
    "ray_serve_http_request_latency_ms_bucket": ("application", "le"),
    "ray_serve_deployment_processing_latency_ms_bucket": ("application", "le"),
    "ray_serve_num_http_requests_total": ("application", "status_code"),
    "ray_serve_deployment_request_counter_total": ("application", "replica"),
    "ray_serve_deployment_error_counter_total": ("application",),
    "ray_serve_deployment_replica_starts_total": ("application",),
    "ray_serve_deployment_queued_queries": ("application",),
    "ray_serve_replica_processing_queries": ("application",),
    "ray_serve_deployment_replica_healthy": ("application", "replica"),
}
COUNTER_SUFFIXES = ("_total", "_bucket")
END = "# EOF\n"
MONITOR = "# MONITOR "
SHARE_AGE = 0.3  # of an interval: a page another digest of this node fetched this recently is used
SHARED_ERROR = "#! "  # a shared page that is a failed fetch's error
SERIES_MAX = 200_000  # distinct series remembered before the caches start over

# (sample name, ((label, value), ...) of the kept labels)
Group = tuple[str, tuple[tuple[str, str], ...]]


def wanted_blocks(text: str) -> list[str]:
    """The sample lines of each family with a kept sample; a family's samples follow its
    `# TYPE` line up to the next comment (str.find keeps the 1.7 MB pass in C)."""
    blocks = []
    start = text.find("# TYPE ")
    while start != -1:
        name_end = text.find(" ", start + 7)
        begin = text.find("\n", start) + 1
        if name_end == -1 or begin == 0:
            break
        name = text[start + 7 : name_end]
        if name in KEEP or name + "_bucket" in KEEP:
            end = text.find("\n#", begin)
            blocks.append(text[begin : end if end != -1 else len(text)])
        start = text.find("# TYPE ", begin)
    return blocks


class Digest:
    """Turns successive pages into successive digests; keeps what resets need."""

    def __init__(self) -> None:
        self.series: dict[str, Group | None] = {}  # series text -> (name, group), or None
        self.last: dict[str, float] = {}  # series text -> its previous value (counters)
        self.totals: dict[Group, float] = {}  # (name, group) -> running total (counters)

    def feed(self, text: str) -> dict[Group, float]:
        """The digest of one page, as {(name, group): value}."""
        if len(self.series) > SERIES_MAX:
            self.series.clear()
        gauges: dict[Group, float] = {}
        seen = []
        for block in wanted_blocks(text):
            for line in block.splitlines():
                if not line or line.startswith("#"):
                    continue
                cut = line.rfind("}") + 1 or line.find(" ")
                key = line[:cut]
                value = float(line[cut:].split()[0])
                try:
                    found = self.series[key]
                except KeyError:
                    found = self.series[key] = _series(key)
                if found is None:
                    continue
                if found[0].endswith(COUNTER_SUFFIXES):
                    seen.append(key)
                    before = self.last.get(key)
                    # A new series counts whole; a counter that went down was reset to zero.
                    grew = value - before if before is not None and value >= before else value
                    self.last[key] = value
                    self.totals[found] = self.totals.get(found, 0.0) + grew
                else:
                    gauges[found] = gauges.get(found, 0.0) + value
        if len(self.last) > SERIES_MAX:  # forget series gone from the page, keep the rest
            self.last = {key: self.last[key] for key in seen}
        out = dict(self.totals)
        out.update(gauges)
        return out


def _series(key: str) -> Group | None:
    """(name, group) of a series text, parsed once by prometheus_client; None if not kept."""
    family = next(iter(text_string_to_metric_families(key + " 0\n")))
    sample = family.samples[0]
    keep = KEEP.get(sample.name)
    if keep is None:
        return None
    return sample.name, tuple((label, sample.labels.get(label, "")) for label in keep)


def render(values: dict[Group, float]) -> str:
    """Prometheus text of a digest, one sample a line, then the end marker."""
    lines = []
    for (name, group), value in sorted(values.items()):
        labels = ",".join('%s="%s"' % (label, _escape(v)) for label, v in group)
        lines.append("%s{%s} %r\n" % (name, labels, value))
    lines.append(END)
    return "".join(lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def fetch(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8", "replace")


def page_cache(url: str) -> str | None:
    """Where this user's digests of `url` share its page, or None when that place is not
    private to this user (then each digest fetches for itself)."""
    directory = os.path.join(tempfile.gettempdir(), "mlops-tui-%d" % os.getuid())
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return os.path.join(directory, "page-" + hashlib.sha256(url.encode()).hexdigest()[:24])


def shared_fetch(url: str, timeout: float, max_age: float, path: str | None) -> str:
    """The page, fetched once for every digest of this node that asks within `max_age` (a
    console and a swap following the same node ask Ray to render it once, not twice); a failed
    fetch is shared the same way, as the error it was."""
    if path is None:
        return fetch(url, timeout)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if time.time() - os.stat(path).st_mtime < max_age:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                if text.startswith(SHARED_ERROR):
                    raise OSError(text[len(SHARED_ERROR) :])
                return text
        except FileNotFoundError:
            pass  # nothing shared yet: fetch it
        try:
            text = fetch(url, timeout)
        except (OSError, ValueError) as exc:
            _share(path, SHARED_ERROR + str(exc))
            raise
        _share(path, text)
        return text


def _share(path: str, text: str) -> None:
    tmp = "%s.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ask_monitors(
    urls: list[str], headers: list[str], timeout: float, context: ssl.SSLContext | None = None
) -> str:
    """One `# MONITOR` line per monitor: its answer (JSON on one line), or why there is none."""
    lines = []
    for i, url in enumerate(urls):
        auth = headers[i] if i < len(headers) else ""
        request = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                body = response.read().decode("utf-8", "replace")
            lines.append("%s%d %s\n" % (MONITOR, i, body.replace("\n", " ").strip()))
        except urllib.error.HTTPError as exc:
            lines.append("%s%d ERROR %d %s\n" % (MONITOR, i, exc.code, exc.reason))
        except (OSError, ValueError) as exc:  # URLError is an OSError
            lines.append("%s%d ERROR %s\n" % (MONITOR, i, exc))
    return "".join(lines)


def parse_headers(line: bytes) -> list[str]:
    """The monitors' Authorization headers from one line of stdin (a JSON list)."""
    try:
        headers = json.loads(line)
    except ValueError:
        return []
    return [h if isinstance(h, str) else "" for h in headers] if isinstance(headers, list) else []


def _follow_stdin(headers: list[list[str]]) -> None:
    """Each line replaces the headers; the end of stdin (the stream was left) ends us."""
    for line in sys.stdin.buffer:
        headers[0] = parse_headers(line)
    os._exit(0)


def _home_path(path: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(os.path.expanduser("~"), path)


def tls_context(ca: str | None, cert: str | None) -> ssl.SSLContext | None:
    """Verification against the CA files only (never turned off), and our certificate."""
    if ca is None:
        return None
    context = ssl.create_default_context(cafile=_home_path(ca))
    if cert:
        context.load_cert_chain(_home_path(cert))
    return context


def main(url: str, interval: float, monitors: list[str]) -> None:
    every = 1
    if monitors and monitors[0].startswith("--every="):
        every = max(1, int(monitors[0][len("--every=") :]))
        monitors = monitors[1:]
    options: dict[str, str] = {}
    while monitors and monitors[0].startswith(("--ca=", "--cert=")):
        name, _, value = monitors.pop(0).partition("=")
        options[name] = value
    context: ssl.SSLContext | None = None
    monitors_error: str | None = None
    try:
        context = tls_context(options.get("--ca"), options.get("--cert"))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        monitors_error = "cannot load the TLS files: %s" % exc
    tick = random.randrange(every)  # the nodes of a fleet ask in turn, not all at once
    headers: list[list[str]] = [[]]
    if monitors:
        first = sys.stdin.buffer.readline()
        if not first:
            os._exit(0)  # the collector went away before saying
        headers[0] = parse_headers(first)
    threading.Thread(target=_follow_stdin, args=(headers,), daemon=True).start()
    digest = Digest()
    cache = page_cache(url)
    while True:
        try:
            page = shared_fetch(url, interval * 0.8, interval * SHARE_AGE, cache)
            out = render(digest.feed(page))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            out = "# ERROR %s: %s\n%s" % (url, exc, END)
        if monitors and tick % every == 0:  # even when Ray's page failed: its own server
            if monitors_error:
                asked = "".join("%s%d ERROR %s\n" % (MONITOR, i, monitors_error)
                                for i in range(len(monitors)))  # fmt: skip
            else:
                asked = ask_monitors(monitors, headers[0], interval * 0.5, context)
            out = out[: -len(END)] + asked + END
        tick += 1
        try:
            sys.stdout.write(out)
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            os._exit(0)  # nobody reads any more
        # The next whole multiple of the interval on the wall clock: every digest of this node
        # asks at the same moments, so they share one fetch. A slow fetch skips, never catches up.
        now = time.time()
        time.sleep((math.floor(now / interval) + 1) * interval - now)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
