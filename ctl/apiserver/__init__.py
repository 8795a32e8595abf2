"""The Kubernetes-compatible API server with Arktos tenancy (``centaurusctl serve apiserver``)."""
