"""One module per scenario; each `run(ctx)` prints its tables and returns its JSON data."""
