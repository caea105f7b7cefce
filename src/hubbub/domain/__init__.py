"""Domain rules of hubbub: pure functions and value types; time and ids come in as arguments."""
