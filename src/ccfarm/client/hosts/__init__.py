"""Host lists (distcc syntax) and the slot locks shared by every wrapper on a machine."""
