"""Print one JSON object describing this host: OS, CPUs, memory, Python, Ray, onnxruntime.

It runs on every host of a fleet at once, so it is kept cheap: only `os` and `sys` (no
platform, shutil or json imports, which triple Python's start-up cost), and versions are
read from `NAME-VERSION.dist-info` folder names instead of importing Ray (seconds) or
importlib.metadata (30 ms of CPU).
"""

import os
import sys


def _versions(dists):
    found = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            dist, _, version = name[: -len(".dist-info")].partition("-")
            dist = dist.lower().replace("-", "_").replace(".", "_")
            if dist in dists and dist not in found:
                found[dist] = version
    return found


def _memory():
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        available = int(info.get("MemAvailable", info["MemFree"]).split()[0]) * 1024
        return total, available
    except (OSError, KeyError, ValueError):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
        except (ValueError, OSError, AttributeError):
            return None, None


def _json(value):
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    text = "".join(c if c >= " " else " " for c in str(value))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    total, available = _memory()
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    try:
        st = os.statvfs(os.path.expanduser("~"))
        disk_free = st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        disk_free = None
    uname = os.uname()
    versions = _versions(("ray", "onnxruntime"))
    facts = {
        "hostname": uname.nodename,
        "os": uname.sysname,
        "os_release": uname.release,
        "arch": uname.machine,
        "cpus": os.cpu_count(),
        "load_1m": load,
        "memory_total": total,
        "memory_available": available,
        "disk_free": disk_free,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "python_path": sys.executable,
        "ray": versions.get("ray"),
        "onnxruntime": versions.get("onnxruntime"),
    }
    body = ", ".join('"%s": %s' % (key, _json(value)) for key, value in facts.items())
    sys.stdout.write("{" + body + "}")


main()
