"""ccfarm: a distributed C/C++ compile farm that speaks the distcc protocol."""

#: the one place the version is written (pyproject.toml reads it from here)
__version__ = "0.1.0"
