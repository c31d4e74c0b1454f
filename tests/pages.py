"""Reading server-rendered admin pages in tests: the text of one element, by id."""

from html.parser import HTMLParser

VOID_ELEMENTS = ("br", "img", "input", "meta", "link")


class _ElementText(HTMLParser):
    def __init__(self, element_id: str):
        super().__init__()
        self.element_id, self.depth, self.text, self.found = element_id, 0, [], False

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag not in VOID_ELEMENTS
            if tag in ("td", "th", "li", "br", "tr", "p"):
                self.text.append(" ")  # cells and lines read apart
        elif dict(attrs).get("id") == self.element_id:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def section(response, element_id: str) -> str:
    """The text of the element with this id in the response's page, whitespace collapsed."""
    parser = _ElementText(element_id)
    parser.feed(response.content.decode())
    assert parser.found, f"no element with id {element_id!r}"
    return " ".join("".join(parser.text).split())
