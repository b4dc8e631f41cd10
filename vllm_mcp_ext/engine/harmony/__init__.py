"""The harmony engine path (gpt-oss): render with openai-harmony, parse its channels.

``render.py`` the conversation and tools as harmony messages and token ids; ``parser.py`` the
output ids as parts (`HarmonyParser`); ``turns.py`` one model turn on vLLM's engine
(`HarmonyTurns`), continuing the held ids token-exactly. See docs/gpt-oss.md.
"""
