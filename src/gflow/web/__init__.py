"""The web dashboard gflowd serves on loopback TCP when ``web = true``.

``server`` (HTTP, tokens, live streams) runs in the daemon; it reaches the runtime only
through ``backend``. ``pages``/``views`` and the templates draw the pages;
``explain``, ``layout``, ``pipeline`` and ``charts`` compute what they show; ``hub``
fans the engine's changes out to open pages; ``static/`` holds the page script and
style sheet (no outside library: the machine may be offline).
"""
