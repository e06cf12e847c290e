"""The consent desk: the human decisions of the Protocol, shared by the CLI and the console.

``requests`` is pure (what waits for an answer, what a grant may cover); ``operations`` does the
I/O (archive, ``gw.control``, the holding queues); ``accounts`` holds the console's operators.
"""
