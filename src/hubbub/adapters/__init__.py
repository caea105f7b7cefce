"""The concrete parts behind the seams (storage/, bus/, coordination/); only the
composition root (app.py, cli.py) imports them."""
