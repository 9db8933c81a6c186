"""Identity providers behind one interface."""
