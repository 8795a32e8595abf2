"""Tenancy outside the API server: the tenant controller and the helpers the CLI uses to issue credentials."""
