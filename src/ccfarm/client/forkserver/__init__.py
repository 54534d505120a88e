"""The fork server: a warm per-user process that runs each job in a fork of
itself, and the native launcher that hands jobs to it."""
