"""Pods on VPC endpoints: the agent side of the network on namespace hosts (issue #18)."""
