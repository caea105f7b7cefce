"""The machine-readable contract: JSON Schema, AsyncAPI and OpenAPI documents built from the
msgspec types, so that a client SDK is generated from what the server really decodes.

Pure: building a document does no I/O (`python -m hubbub.contract` writes them,
contract/http.py serves them)."""
