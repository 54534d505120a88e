"""ccfarm: a distributed C/C++ compile farm that speaks the distcc protocol."""

__version__ = "0.1.0"
