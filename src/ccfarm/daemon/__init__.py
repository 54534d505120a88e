"""ccfarmd: the compile daemon (distcc-compatible) and, later, its host agent."""
