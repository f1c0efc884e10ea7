"""The benchmarks page includes the files of ``bench/results/`` as they are committed
(``pymdownx.snippets``), and their links name the files beside them: the raw runs'
JSON, the profiles, each other. None of those is a page of the site, so such a link
would be a broken one (and fail ``mkdocs build --strict``); this hook sends it to the
file in the repository instead.

Registered as ``hooks:`` in ``mkdocs.yml``; ``exclude_docs`` keeps it off the site.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

# A Markdown link whose target is a bare file name: ``[text](reference-plain.json)``.
LINK = re.compile(r"\]\(([\w.-]+)\)")
# After pymdownx.snippets (32) has included the files, before fenced code is stashed (25).
PRIORITY = 31


class ResultLinks(Preprocessor):
    """Points links to ``bench/results/`` files that are not pages at the repository."""

    def __init__(self, md: Markdown, results: Path, docs: Path, base_url: str) -> None:
        super().__init__(md)
        self.results = results
        self.docs = docs
        self.base_url = base_url

    def run(self, lines: list[str]) -> list[str]:
        return [LINK.sub(self.rewrite, line) for line in lines]

    def rewrite(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if (self.results / name).is_file() and not (self.docs / name).exists():
            return f"]({self.base_url}{name})"
        return match.group(0)


class ResultLinksExtension(Extension):
    def __init__(self, results: Path, docs: Path, base_url: str) -> None:
        super().__init__()
        self.paths = (results, docs, base_url)

    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(ResultLinks(md, *self.paths), "bench_results", PRIORITY)


def on_config(config: Any) -> Any:
    if not config.repo_url:  # nowhere to send them: the strict build names each one
        return config
    root = Path(config.config_file_path).resolve().parent
    base_url = f"{config.repo_url.rstrip('/')}/blob/main/bench/results/"
    extension = ResultLinksExtension(root / "bench" / "results", Path(config.docs_dir), base_url)
    config.markdown_extensions.append(extension)
    return config
