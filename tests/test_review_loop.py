"""The review loop's remainder (issue 16): a retouched output shown beside what was generated, and the
review server's writes taking the build lock, so they never race a build's lock save."""

from __future__ import annotations

import json
import threading
import time
import tomllib
import urllib.request
from pathlib import Path
from urllib.parse import unquote

from helpers.images import jpeg_bytes
from helpers.project import ProjectDir
from test_gallery import cards_of, write

from assetgen.commands.review import gallery_actions
from assetgen.engine.project import acquire_build_lock
from assetgen.review.server import GalleryServer

RETOUCHED = """\
[settings]
out_dir = "out"

[targets.logo]
prompt = "A logo"
outputs = [
  { output = "logo.png" },
  { output = "logo@64.png", resize = [16, 16] },
]

[targets.hero]
prompt = "A knight"
"""


def test_the_gallery_shows_a_retouched_output_beside_what_was_generated(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(RETOUCHED)
    p.ok("build", "--offline")
    generated = (p.root / "out" / "logo@64.png").read_bytes()
    before = cards_of(write(p, out_dir=p.root / "g"))
    assert before["logo"].all("figure", "retouched") == []                 # nothing retouched yet
    (p.root / "out" / "logo@64.png").write_bytes(jpeg_bytes((10, 200, 10), size=(16, 16)))
    p.ok("adopt", "logo")
    card = cards_of(write(p, out_dir=p.root / "g"))["logo"]
    (now,) = card.all("figure", "retouched")
    (was,) = card.all("figure", "generated")
    assert now.attrs["data-path"] == was.attrs["data-path"] == "out/logo@64.png"
    assert unquote(now.one("a", "shot").attrs["href"]) == "../out/logo@64.png"        # the file as it is
    cached = unquote(was.one("a", "shot").attrs["href"])                          # the generated image
    assert cached.startswith("../.assetgen/objects/") and (p.root / "g" / cached).resolve().read_bytes() == generated
    assert now.one("img").attrs["src"] != was.one("img").attrs["src"]           # two thumbnails
    assert [c.text() for c in card.all("figcaption")][:2] == ["out/logo@64.png · retouched", "as generated"]
    assert "Retouched (1), beside what was generated" in card.text()
    assert cards_of(write(p, out_dir=p.root / "g"))["hero"].all("figure", "retouched") == []
