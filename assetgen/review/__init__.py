"""The gallery: what a card shows (``cards``), its thumbnails (``thumbnails``), the page written from
them (``page``: ``write_gallery``), the live server a watch runs (``server``: ``GalleryServer``) and
the glue that keeps it fresh (``live``). Sits between ``commands`` and ``engine``: it reads plans,
locks and build reports, and a command (or the CLI) may show it; the engine never imports it."""
