"""Check every relative link of a built HTML site: the file exists, and so does the anchor.

    python docs/check_links.py docs/_build/html

Sphinx's own linkcheck builder sees the links the sources write (every http(s) address is
ignored there: this machine reaches no web site); this script checks the pages as built, with
the theme's navigation and the included reports, so a page, figure or anchor that is missing
fails ``make docs``. Exit code 1 and one line per broken link.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Links(HTMLParser):
    """The ``href``/``src`` values and the ``id``/``name`` anchors of one page."""

    def __init__(self):
        super().__init__()
        self.links, self.anchors = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)
            elif name in ("id", "name") and value:
                self.anchors.add(value)


def parse(path, cache):
    if path not in cache:
        parser = Links()
        parser.feed(path.read_text(errors="replace"))
        cache[path] = parser
    return cache[path]


def broken_links(site):
    """``(page, link, why)`` for every relative link of the site that does not resolve."""
    site = Path(site).resolve()
    cache, broken = {}, []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] in ("_static", "_sources"):
            continue  # the theme's template fragments, the page sources
        for link in parse(page, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue  # external: not checked here (no network)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append((page, link, "no such file"))
            elif parts.fragment and target.suffix == ".html" and (
                    unquote(parts.fragment) not in parse(target, cache).anchors):
                broken.append((page, link, "no such anchor"))
    return broken, len(cache)


def main(argv=None):
    site = (argv or sys.argv[1:] or ["docs/_build/html"])[0]
    if not Path(site, "index.html").exists():
        print(f"check_links: {site}/index.html not found: build the site first (make docs)")
        return 1
    broken, pages = broken_links(site)
    for page, link, why in broken:
        print(f"{Path(page).relative_to(Path(site).resolve())}: {link}: {why}")
    print(f"check_links: {pages} pages, {len(broken)} broken relative links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
