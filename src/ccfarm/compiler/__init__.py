"""Compiler command lines: what can be distributed and how to rewrite it (pure).

Modules: `args` (client side), `daemon_args` (daemon side), `linemarkers`,
`identity`. Nothing is imported here: the wrapper imports only what a job
needs (start-up time).
"""
