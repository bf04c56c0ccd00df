"""The OpenAI-compatible chat client and the wire types a server shares with it."""
