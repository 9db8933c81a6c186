"""Pure protocol decisions: no I/O, `now` and keys passed in."""
