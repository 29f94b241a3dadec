"""The gallery: cards and thumbnails from a plan and its locks (``gallery``), the page (``page``) and
the live page a watch serves (``live``). Sits between ``commands`` and ``engine``: it reads plans,
locks and build reports, and a command (or the CLI) may show it; the engine never imports it."""
