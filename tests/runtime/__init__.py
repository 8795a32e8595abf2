"""Tests of the container runtimes, the pod network plumbing and the prober."""
