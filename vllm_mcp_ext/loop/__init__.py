"""The agent loop: what the model may call, running the calls, turn after turn."""
