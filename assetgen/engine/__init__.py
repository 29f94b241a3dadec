"""Deciding and building: content keys (``keys``), the plan (``plan``), the scheduler that builds it
(``scheduler``), the events it emits (``events``), an open project (``project``) and its remembered
manifest (``snapshot``). Imports ``manifest``, ``state``, ``remote``, ``providers`` and ``images``
below it; never ``review``, ``commands`` or ``cli``."""
