"""MkDocs hook: pages generated at build time, so the site cannot drift from the code.

* ``reference/<tool>.md`` for every command, from its argparse parser, by the generator of
  the man pages (``gflow.cli.reference``);
* ``reference/configuration.md``, the commented file ``gflowd init`` writes;
* ``changelog.md``, CHANGELOG.md as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from gflow.cli import reference
from gflow.config import DEFAULT_CONFIG

CONFIGURATION = """\
# Configuration file

`gflowd init` writes this file to `~/.config/gflow/gflow.toml` (`$GFLOW_HOME/gflow.toml`
when `GFLOW_HOME` is set, `/etc/gflow/gflow.toml` for the system daemon). Every key can
also be set for one start with `GFLOW_DAEMON__<KEY>=value`, and `gflowd reload` re-reads
the file, saying which changes need a restart. Generated from the file gflowd writes.

```toml
{config}```
"""


def on_files(files: Files, config: Any) -> Files:
    root = Path(config.config_file_path).parent
    pages = {
        f"reference/{tool}.md": reference.markdown(reference.page(tool)) for tool in reference.TOOLS
    }
    pages["reference/configuration.md"] = CONFIGURATION.format(config=DEFAULT_CONFIG)
    pages["changelog.md"] = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
