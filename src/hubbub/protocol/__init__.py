"""The wire contract of PROTOCOL.md as typed msgspec Structs, and the codec. Pure: no I/O."""
