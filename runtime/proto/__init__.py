"""The sans-I/O protocol core: HTTP/1.1 (``h1``) over httptools and WebSocket (``ws``) over the
``websockets`` library. No asyncio, no sockets, no app: bytes in, events out."""
