"""learnloop connectors: one package per tool, each with the same shape."""
