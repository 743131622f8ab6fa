"""HTTPS on every Serve port: the inventory's CA, node certificates, and our clients' side."""
