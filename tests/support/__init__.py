"""Test support: scripted tool-calling conversations and a tiny model trained to replay them."""
