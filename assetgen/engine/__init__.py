"""Deciding and building: content keys (``keys``), the plan (``plan``), the scheduler that builds it
(``scheduler``) with the remote cache's leases (``leases``) and the outputs it writes (``outputs``),
the events it emits (``events``), an open project (``project``) and its remembered manifest
(``snapshot``). Imports ``manifest``, ``state``, ``remote``, ``providers`` and ``images``
below it; never ``review``, ``commands`` or ``cli``."""
