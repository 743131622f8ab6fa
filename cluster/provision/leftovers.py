"""Files an interrupted run leaves on a host, and their removal by the next apply or destroy.

An upload stages into NAME.partial-TAG and moves the old copy to NAME.old-TAG-N; a secret is
written to NAME.tmp.PID and renamed. A cut connection or a killed operator leaves these
behind; a staged token is a secret lying outside the one file meant to hold it.
"""

from __future__ import annotations

from cluster.errors import TransportError
from cluster.provision.layout import Layout
from cluster.transport.base import Transport

# Uploads younger than this may still be under way (another operator's apply of another app):
# they are kept. A secret's temp file lives a fraction of a second, but hosts that share a
# home (NFS) share our root, and another host's write may be under way at this very moment:
# one goes once it is more than SECRET_GRACE_MIN old.
UPLOAD_GRACE_MIN = 2
SECRET_GRACE_MIN = 1

_SCRIPT = r"""
root="$1"; grace="$2"; secret_grace="$3"
{
  [ -d "$root" ] && find "$root" -maxdepth 1 \( -name 'wheelhouse.partial-*' \
      -o -name 'wheelhouse.old-*-*' \) -mmin +"$grace" -prune -print -exec rm -rf -- {} +
  for dir in "$root/code" "$root/models"; do
    [ -d "$dir" ] && find "$dir" -maxdepth 3 \( -name '*.partial-*' -o -name '*.old-*-*' \) \
      -mmin +"$grace" -prune -print -exec rm -rf -- {} +
  done
  for dir in "$root/auth" "$root/code" "$root/ray" "$root/tls"; do
    [ -d "$dir" ] && find "$dir" -maxdepth 2 -type f -name '*.tmp.[0-9]*' \
      -mmin +"$secret_grace" -print -exec rm -f -- {} +
  done
} | wc -l
"""


async def remove_leftovers(transport: Transport, layout: Layout) -> int:
    """How many leftovers were removed under the host's root (none of their names or content
    is ever printed)."""
    result = await transport.run(
        ["sh", "-c", _SCRIPT, "sh", layout.root, str(UPLOAD_GRACE_MIN), str(SECRET_GRACE_MIN)]
    )
    if not result.ok or not result.stdout.strip().isdigit():
        raise TransportError(transport.host.name, f"cannot remove leftovers: {result.reason()}")
    return int(result.stdout.strip())
