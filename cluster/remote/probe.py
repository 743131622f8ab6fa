"""Print one JSON object describing this host: OS, CPUs, memory, Python, Ray, onnxruntime.

It runs on every host of a fleet at once, so it is kept cheap: started with `python -S` (the
`site` module and the .pth files it runs cost two thirds of Python's start-up), only `os` and
`sys` (no platform, shutil or json imports), and versions are read from
`NAME-VERSION.dist-info` folder names instead of importing Ray (seconds) or importlib.metadata.
Site-packages are found from sys.prefix; only when a package is not there is `site` imported
after all, so every place it would add is still searched.
"""

import os
import sys


def _venv():
    """(venv root, whether it sees the system's packages), found the way `site` finds it."""
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    for root in (exe_dir, os.path.dirname(exe_dir)):
        try:
            with open(os.path.join(root, "pyvenv.cfg")) as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        system = False
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip().lower() == "include-system-site-packages":
                system = value.strip().lower() == "true"
        return root, system
    return None, True


def _site_dirs():
    """Where `site` would put packages for this interpreter, without importing it."""
    version = "python%d.%d" % sys.version_info[:2]
    venv, system = _venv()
    prefixes = ([venv] if venv else []) + ([sys.prefix, sys.exec_prefix] if system else [])
    dirs = []
    if system:  # the user's site comes first
        dirs.append(
            os.path.expanduser(os.path.join("~", ".local", "lib", version, "site-packages"))
        )
    for prefix in prefixes:
        for lib in ("lib", "lib64"):
            dirs.append(os.path.join(prefix, lib, version, "site-packages"))
        dirs.append(os.path.join(prefix, "local", "lib", version, "dist-packages"))  # Debian
        dirs.append(os.path.join(prefix, "lib", "python3", "dist-packages"))
    return dirs


def _all_versions(dists):
    found = _versions(dists, _site_dirs() + sys.path)
    if len(found) < len(dists) and "site" not in sys.modules:
        import site  # a package is elsewhere (a .pth, a system site): look where site looks

        site.main()
        found = _versions(dists, sys.path)
    return found


def _versions(dists, path):
    found = {}
    for entry in path:
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
    versions = _all_versions(("ray", "onnxruntime"))
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
