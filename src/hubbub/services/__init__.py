"""Use cases over the `Store` and `Bus` seams; no driver or web framework is imported here."""
