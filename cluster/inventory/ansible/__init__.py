"""Hosts from Ansible inventories (YAML or INI, one file or several), resolved as Ansible does.

`read_ansible` reads every source named by `ansible_inventory:` into one graph, then gives
each host the variables Ansible would: `all`'s, then its groups' by depth, priority and
name, then `group_vars/`, then its own, then `host_vars/` (see `resolve`).
"""

from cluster.inventory.ansible.sources import read_ansible

__all__ = ["read_ansible"]
