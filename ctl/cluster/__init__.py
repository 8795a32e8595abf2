"""Cluster lifecycle helpers: starting and stopping the local processes a control plane needs
(for example a loopback etcd for ``centaurusctl init --store etcd`` and for tests)."""
