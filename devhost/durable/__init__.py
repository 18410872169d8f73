"""The Durable extension's stand-in: history events, the orchestration turn, the dispatcher."""
