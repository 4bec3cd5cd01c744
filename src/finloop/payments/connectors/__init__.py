"""Payment channel connectors: one package per provider, small capability interfaces, and the sandbox."""
