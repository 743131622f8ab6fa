"""What `plan` says about a node's TLS files, and what `apply` writes, without a host."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cluster.inventory import Inventory, load_inventory
from cluster.provision.layout import Layout
from cluster.provision.topology import RayCluster, clusters_of
from cluster.tls.authority import NODE_DAYS, load_or_create
from cluster.tls.nodes import (
    CLIENT,
    CLIENTS,
    NODE,
    TRUST,
    http_options_tls,
    node_texts,
    own_cert_problems,
    plan_node,
    serve_mode,
    sha,
)

NOW = dt.datetime.now(dt.UTC)


def inventory(tmp_path: Path, tls: str = "") -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "hosts:\n  h1: 127.0.0.11\n  h2: 127.0.0.12\n"
        "targets:\n  grid:\n    topology: cluster\n    head: h1\n    workers: [h2]\n" + tls
    )
    return load_inventory(path, env={})


def grid(inv: Inventory) -> RayCluster:
    return clusters_of(inv, inv.targets["grid"])[0]


def node_state(texts: dict[str, tuple[str, bool]]) -> tuple[dict[str, str | None], str | None]:
    """What the observe script reports of files as `apply` wrote them."""
    files: dict[str, str | None] = {name: sha(text) for name, (text, _) in texts.items()}
    node = texts[NODE][0]
    cert = node[: node.index("-----END CERTIFICATE-----") + 25] + "\n"
    return files, cert


def test_a_new_node_gets_every_file_then_nothing_more(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    cluster = grid(inv)
    h1, h2 = cluster.hosts
    need = plan_node(inv, cluster, h1, {}, None, NOW)
    assert need is not None and set(need.names) == {NODE, TRUST}
    assert "certificate for 127.0.0.11 and h1" in need.detail
    assert not (tmp_path / "tls").exists()  # plan never makes the CA
    issued: dict[str, str] = {}
    texts = node_texts(inv, cluster, h1, need.names, issued)
    assert texts[NODE][1] and not texts[TRUST][1]  # node.pem is private
    assert "PRIVATE KEY" in texts[NODE][0] and "PRIVATE" not in texts[TRUST][0]
    files, cert = node_state(texts)
    assert plan_node(inv, cluster, h1, files, cert, NOW) is None
    # The cluster's one certificate is valid for both nodes: h2 gets the same.
    assert node_texts(inv, cluster, h2, need.names, issued)[NODE] == texts[NODE]
    assert plan_node(inv, cluster, h2, files, cert, NOW) is None


def test_a_certificate_is_renewed_in_its_last_30_days_or_if_not_the_cas(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    cluster = grid(inv)
    h1 = cluster.head
    texts = node_texts(inv, cluster, h1, (NODE, TRUST), {})
    files, _ = node_state(texts)
    ca = load_or_create(tmp_path / "tls", "x")
    old = ca.issue_server("grid", ["127.0.0.11", "h1"], now=NOW - dt.timedelta(days=NODE_DAYS - 10))
    need = plan_node(inv, cluster, h1, files, old.cert_pem.decode(), NOW)
    assert need is not None and need.names == (NODE,) and need.detail.startswith("renew")
    stranger = load_or_create(tmp_path / "other", "x").issue_server("grid", ["127.0.0.11", "h1"])
    need = plan_node(inv, cluster, h1, files, stranger.cert_pem.decode(), NOW)
    assert need is not None and "from the inventory's CA" in need.detail
    elsewhere = ca.issue_server("grid", ["127.0.0.99"])
    need = plan_node(inv, cluster, h1, files, elsewhere.cert_pem.decode(), NOW)
    assert need is not None and "the node's names 127.0.0.99" in need.detail


def test_client_ca_adds_the_accepted_cas_and_our_client_certificate(tmp_path: Path) -> None:
    theirs = load_or_create(tmp_path / "theirs", "clients")
    inv = inventory(tmp_path, f"    tls: {{client_ca: {theirs.cert_path}}}\n")
    cluster = grid(inv)
    assert serve_mode(cluster.target) == "https+client-certs"
    layout = Layout("/srv/m")
    assert http_options_tls(layout, "grid", cluster.target) == {
        "ssl_certfile": "/srv/m/tls/grid/node.pem",
        "ssl_keyfile": "/srv/m/tls/grid/node.pem",
        "ssl_ca_certs": "/srv/m/tls/grid/clients.pem",
    }
    need = plan_node(inv, cluster, cluster.head, {}, None, NOW)
    assert need is not None and set(need.names) == {NODE, TRUST, CLIENTS, CLIENT}
    texts = node_texts(inv, cluster, cluster.head, need.names, {})
    assert texts[CLIENT][1] and "PRIVATE KEY" in texts[CLIENT][0]
    assert theirs.cert_pem.decode() in texts[CLIENTS][0]
    assert load_or_create(tmp_path / "tls", "x").cert_pem.decode() in texts[CLIENTS][0]
    files, cert = node_state(texts)
    assert plan_node(inv, cluster, cluster.head, files, cert, NOW) is None


def test_off_means_plain_http_and_no_files(tmp_path: Path) -> None:
    inv = inventory(tmp_path, "    tls: off\n")
    cluster = grid(inv)
    assert serve_mode(cluster.target) == "http"
    assert http_options_tls(Layout("/r"), "grid", cluster.target) == {}
    assert plan_node(inv, cluster, cluster.head, {}, None, NOW) is None


def test_a_hosts_own_certificate_is_shipped_as_it_is_and_checked_first(tmp_path: Path) -> None:
    theirs = load_or_create(tmp_path / "theirs", "their CA")
    good = theirs.issue_server("h2", ["127.0.0.12"])
    (tmp_path / "h2.pem").write_bytes(good.cert_pem)
    (tmp_path / "h2.key").write_bytes(good.key_pem)
    (tmp_path / "ca.pem").write_bytes(theirs.cert_pem)
    own = "\n".join(
        ["hosts:", "  h1: 127.0.0.11", "  h2:", "    address: 127.0.0.12",
         "    tls: {cert_file: h2.pem, key_file: h2.key}"]
    )  # fmt: skip
    path = tmp_path / "inventory.yaml"
    targets = "targets:\n  grid:\n    topology: cluster\n    head: h1\n    workers: [h2]\n"
    path.write_text(own + "\n" + targets)
    inv = load_inventory(path, env={})
    cluster = grid(inv)
    h2 = cluster.workers[0]
    [problem] = own_cert_problems(h2, cluster.target)
    assert "needs the CA that signed it as ca_file" in problem
    path.write_text(own + "\n" + targets + "    tls: {ca_file: ca.pem}\n")
    inv = load_inventory(path, env={})
    cluster = grid(inv)
    h2 = cluster.workers[0]
    assert own_cert_problems(h2, cluster.target) == []
    texts = node_texts(inv, cluster, h2, (NODE, TRUST), {})
    assert texts[NODE][0].startswith(good.cert_pem.decode())
    assert theirs.cert_pem.decode() in texts[TRUST][0]  # our clients trust their CA too
    files, cert = node_state(texts)
    assert plan_node(inv, cluster, h2, files, cert, NOW) is None
    # Not its key, or not for its address: refused before anything ships.
    other = theirs.issue_server("h2", ["127.0.0.99"])
    (tmp_path / "h2.pem").write_bytes(other.cert_pem)
    assert "is not the key of" in own_cert_problems(h2, cluster.target)[0]
    (tmp_path / "h2.key").write_bytes(other.key_pem)
    assert "is not valid for 127.0.0.12" in own_cert_problems(h2, cluster.target)[0]
