"""The host-server: which host gets each compile job (pure core + asyncio shell)."""
