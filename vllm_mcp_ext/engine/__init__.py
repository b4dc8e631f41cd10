"""Model turns: render the conversation, generate on the engine, parse the output."""
