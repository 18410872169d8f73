"""Read a v1 app's function folders and call its entry points the way the Python worker does."""
