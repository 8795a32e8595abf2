"""API types shared by the server, the clients and the agents: kinds, metadata, selectors, validation."""
