"""Pod runtimes behind one interface (:mod:`agent.runtime.base`)."""
