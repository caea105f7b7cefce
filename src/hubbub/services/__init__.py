"""Use cases over the seams (storage, bus, coordination); no driver or web framework is
imported here."""
