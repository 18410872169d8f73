"""A local stand-in for the Azure Functions host and the Durable extension (Python v1 apps)."""
