"""Unit tests use the distcc captures beside the repository (see tests/conftest.py)."""
