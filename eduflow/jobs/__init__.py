"""Background jobs: the outbox, task functions, workers and registry tools."""
