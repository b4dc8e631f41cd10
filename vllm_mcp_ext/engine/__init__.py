"""Model turns: render the conversation (its media as vLLM takes it: `media`), generate on the
engine, parse the output into `types.parts`."""
