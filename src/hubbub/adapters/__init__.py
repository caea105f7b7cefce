"""The concrete adapters behind the seams (storage/, bus/, coordination/). Only the
composition root (app.py, cli.py) imports them."""
