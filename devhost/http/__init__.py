"""The HTTP front: function triggers, the durable management API, keys and logging."""
