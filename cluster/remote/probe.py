"""Print one JSON object describing this host: OS, CPUs, memory, Python, Ray, onnxruntime.

Versions come from package metadata, so probing never imports Ray (that takes seconds).
"""

import json
import os
import platform
import shutil
import sys


def _version(dist):
    try:
        from importlib import metadata
    except ImportError:
        return None
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _memory():
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        available = int(info.get("MemAvailable", info["MemFree"]).split()[0]) * 1024
        return total, available
    except (OSError, KeyError, ValueError):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None, None
        return total, None


def main():
    total, available = _memory()
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    disk = shutil.disk_usage(os.path.expanduser("~"))
    facts = {
        "hostname": platform.node(),
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "load_1m": load,
        "memory_total": total,
        "memory_available": available,
        "disk_free": disk.free,
        "python": platform.python_version(),
        "python_path": sys.executable,
        "ray": _version("ray"),
        "onnxruntime": _version("onnxruntime"),
    }
    sys.stdout.write(json.dumps(facts))


main()
