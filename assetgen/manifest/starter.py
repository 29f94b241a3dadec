"""The commented starter manifest that ``assetgen init`` writes."""

# Where the JSON Schema of assets.toml is published (the repository's committed schema/assets.schema.json,
# equal to `assetgen schema`); taplo (Even Better TOML) reads the `#:schema` directive on the first line.
SCHEMA_URL = "https://raw.githubusercontent.com/assetgen/assetgen/main/schema/assets.schema.json"

STARTER_MANIFEST = f'''\
#:schema {SCHEMA_URL}
# assets.toml: every generated image of this project, declared once.
# `assetgen plan` shows what would be built and what it costs; `assetgen build` builds only what changed.
# Reference: https://pypi.org/project/assetgen-build/ (README) and `assetgen models`.

[settings]
out_dir = "assets/generated"   # outputs are written under this folder (relative to this file)
jobs = 8                       # tasks in flight at once
# budget = 5.00                # refuse a build whose estimate exceeds this many USD

[defaults]                     # applied to every target unless it sets the field itself
model = "gemini-3.1-flash-image-preview"
aspect_ratio = "1:1"
resolution = "1K"

[targets.hero]
prompt = "A knight in silver armour, side view, flat pastel style, plain white background"
aspect_ratio = "3:4"
output = "characters/hero.jpg"  # relative to out_dir; default "<target name>.jpg"

# [targets.hero_walk]
# action = "edit"
# prompt = "The same knight, mid-stride walking pose"
# references = ["@hero"]       # @name: another target's output; a file path; or an http(s) URL
'''
