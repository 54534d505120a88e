"""The main job: a local farm on this machine building a real C code base."""
