"""The vLLM endpoint plugin: routes, request validation and the error boundary."""
